"""Replica sync (PROTOCOL.md §5): push, pull, status, tombstone retention."""
