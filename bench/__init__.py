"""Benchmarks (`make bench`): DynamoDB request counts, wall time, peak RSS."""
