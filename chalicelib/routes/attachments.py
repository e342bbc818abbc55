"""Routes of the attachments group (see PROTOCOL.md)."""

from __future__ import annotations

from chalice import Blueprint

bp = Blueprint(__name__)
