"""DynamoDB and S3 access: repositories in the domain's words (docs/TABLE_DESIGN.md)."""
