"""DynamoDB and S3 access: key helpers, schema, clients, retries."""
