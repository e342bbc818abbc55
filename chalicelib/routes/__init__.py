"""Chalice blueprints, one per route group: parse → call → respond."""
