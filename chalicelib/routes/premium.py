"""§9 routes: the premium object, promo redemption, checkout link, Lemon Squeezy webhook."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.entitlements import premium_view
from chalicelib.errors import ApiError, ErrorCode
from chalicelib.identity import Principal
from chalicelib.premium import promo, webhook
from chalicelib.premium.checkout import checkout_url
from chalicelib.routes.context import principal, table
from chalicelib.routes.http import AUTH_ERRORS, json_response, operation, parse_body
from chalicelib.settings import get_settings
from chalicelib.shared.models.premium import (
    CheckoutRequest,
    CheckoutResponse,
    PremiumOut,
    RedeemRequest,
    WebhookAck,
)

bp = Blueprint(__name__)


def _vault_id(caller: Principal) -> str:
    """The caller's vault, registered or not; a retired key owns none."""
    if caller.vault_id is None:
        raise ApiError(ErrorCode.VAULT_NOT_FOUND, "No vault answers to this Key DID any more.")
    return caller.vault_id


@operation(
    bp,
    "/api/premium",
    "GET",
    summary="The vault's Premium state",
    tag="premium",
    response=PremiumOut,
    errors=AUTH_ERRORS,
)
def get_premium() -> Response:
    caller = principal(bp.current_request)
    return json_response(PremiumOut(**premium_view(caller.meta, get_settings())))


@operation(
    bp,
    "/api/premium/redeem",
    "POST",
    summary="Redeem a promo code for this vault",
    tag="premium",
    body=RedeemRequest,
    response=PremiumOut,
    errors=(
        "invalid_request",
        *AUTH_ERRORS,
        "vault_not_found",
        "promo_not_found",
        "already_redeemed",
        "promo_exhausted",
        "unavailable",
    ),
)
def redeem() -> Response:
    request = bp.current_request
    req = parse_body(request, RedeemRequest)
    caller = principal(request)
    summary = promo.redeem(table(), _vault_id(caller), req.code, caller)
    return json_response(PremiumOut(**premium_view(summary, get_settings())))


@operation(
    bp,
    "/api/premium/checkout",
    "POST",
    summary="The hosted checkout link for this vault's key",
    tag="premium",
    response=CheckoutResponse,
    errors=("invalid_request", *AUTH_ERRORS, "vault_not_found", "unavailable"),
)
def checkout() -> Response:
    request = bp.current_request
    if request.raw_body:
        parse_body(request, CheckoutRequest)
    caller = principal(request)
    _vault_id(caller)
    url = checkout_url(get_settings().lemonsqueezy_checkout_url, caller.key_did)
    return json_response(CheckoutResponse(url=url))


@operation(
    bp,
    "/api/premium/webhook",
    "POST",
    summary="Lemon Squeezy subscription events (signed with X-Signature)",
    tag="premium",
    response=WebhookAck,
    auth=False,
    errors=("invalid_request", "invalid_signature", "payload_too_large", "unavailable"),
    raw_body=True,
)
def lemonsqueezy_webhook() -> Response:
    request = bp.current_request
    raw = request.raw_body or b""
    outcome = webhook.handle(
        table(),
        get_settings().lemonsqueezy_signing_secret,
        raw.encode("utf-8") if isinstance(raw, str) else raw,
        request.headers.get("x-signature"),
    )
    return json_response(WebhookAck(status=outcome))
