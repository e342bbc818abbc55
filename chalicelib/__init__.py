"""NT² Cloud Sync server library (no chalice import outside routes/)."""
