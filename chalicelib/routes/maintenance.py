"""Scheduled maintenance: the daily tombstone purge."""

from __future__ import annotations

import logging
from typing import Any

from chalice import Blueprint, Rate

from chalicelib.routes.context import table
from chalicelib.settings import get_settings
from chalicelib.sync.retention import purge_all

bp = Blueprint(__name__)
log = logging.getLogger("nt2sync.maintenance")


@bp.schedule(Rate(1, unit=Rate.DAYS))
def purge_tombstones(event: Any) -> None:
    removed = purge_all(table(), get_settings().tombstone_retention_days)
    log.info('{"job":"purge_tombstones","removed":%d}', removed)
