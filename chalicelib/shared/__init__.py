"""What the server and the reference client both import: no boto3, no chalice."""
