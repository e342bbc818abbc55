"""NT² Cloud Sync API: the Chalice app. Routes live in chalicelib/routes (one blueprint each)."""

from __future__ import annotations

import logging

from chalice import Chalice

from chalicelib.routes import (
    attachments,
    devices,
    identity,
    live,
    maintenance,
    meta,
    premium,
    sync,
    vault,
)
from chalicelib.routes.http import cors_middleware
from chalicelib.settings import MissingSettings, require_lambda_settings

try:
    require_lambda_settings()
except MissingSettings as exc:  # one clear line in the function's log, then no cold start
    logging.getLogger("nt2-sync").critical("%s", exc)
    raise

# Powertools owns the "nt2-sync" logger (one JSON line per request); no second handler.
app = Chalice(app_name="nt2-sync", configure_logs=False)
app.log.setLevel(logging.INFO)
logging.getLogger("nt2sync").setLevel(logging.INFO)

for blueprint in (meta, identity, vault, sync, devices, attachments, premium, maintenance, live):
    app.register_blueprint(blueprint.bp)
app.register_middleware(cors_middleware, "http")

# §10: the WebSocket API (Chalice holds WebSocket handlers on the app, not on a blueprint).
app.experimental_feature_flags.update(["WEBSOCKETS"])
# Lambda finds each handler as `app.<its name>`.
ws_connect = app.on_ws_connect()(live.ws_connect)
ws_message = app.on_ws_message()(live.ws_message)
ws_disconnect = app.on_ws_disconnect()(live.ws_disconnect)
