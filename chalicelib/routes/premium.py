"""Routes of the premium group (see PROTOCOL.md)."""

from __future__ import annotations

from chalice import Blueprint

bp = Blueprint(__name__)
