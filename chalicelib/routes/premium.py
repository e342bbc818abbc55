"""§9 routes: the premium object, promo redemption, checkout link, Lemon Squeezy webhook."""

from __future__ import annotations

from chalice import Blueprint
from chalice.app import Request as ChaliceRequest

from chalicelib.entitlements import premium_view
from chalicelib.errors import ApiError, ErrorCode
from chalicelib.identity import Principal
from chalicelib.premium import promo, webhook
from chalicelib.premium.checkout import checkout_url
from chalicelib.routes.context import table
from chalicelib.routes.operations import AUTH_ERRORS, operation
from chalicelib.settings import get_settings
from chalicelib.shared.models.premium import (
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
def get_premium(caller: Principal) -> PremiumOut:
    return PremiumOut(**premium_view(caller.meta, get_settings()))


@operation(
    bp,
    "/api/premium/redeem",
    "POST",
    summary="Redeem a promo code for this vault",
    tag="premium",
    body=RedeemRequest,
    response=PremiumOut,
    errors=(
        ErrorCode.INVALID_REQUEST,
        *AUTH_ERRORS,
        ErrorCode.VAULT_NOT_FOUND,
        ErrorCode.PROMO_NOT_FOUND,
        ErrorCode.ALREADY_REDEEMED,
        ErrorCode.PROMO_EXHAUSTED,
        ErrorCode.UNAVAILABLE,
    ),
)
def redeem(body: RedeemRequest, caller: Principal) -> PremiumOut:
    summary = promo.redeem(table(), _vault_id(caller), body.code, caller)
    return PremiumOut(**premium_view(summary, get_settings()))


# Checkout takes no body, or `{}` (CheckoutRequest): the decorator refuses any other body.
@operation(
    bp,
    "/api/premium/checkout",
    "POST",
    summary="The hosted checkout link for this vault's key",
    tag="premium",
    response=CheckoutResponse,
    errors=(
        ErrorCode.INVALID_REQUEST,
        *AUTH_ERRORS,
        ErrorCode.VAULT_NOT_FOUND,
        ErrorCode.UNAVAILABLE,
    ),
)
def checkout(caller: Principal) -> CheckoutResponse:
    _vault_id(caller)
    return CheckoutResponse(
        url=checkout_url(get_settings().lemonsqueezy_checkout_url, caller.key_did)
    )


# raw: the signature is over the body's exact bytes, so the view reads them itself.
@operation(
    bp,
    "/api/premium/webhook",
    "POST",
    summary="Lemon Squeezy subscription events (signed with X-Signature)",
    tag="premium",
    response=WebhookAck,
    auth=False,
    errors=(
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_SIGNATURE,
        ErrorCode.PAYLOAD_TOO_LARGE,
        ErrorCode.UNAVAILABLE,
    ),
    raw=True,
)
def lemonsqueezy_webhook(request: ChaliceRequest) -> WebhookAck:
    raw = request.raw_body or b""
    outcome = webhook.handle(
        table(),
        get_settings().lemonsqueezy_signing_secret,
        raw.encode("utf-8") if isinstance(raw, str) else raw,
        request.headers.get("x-signature"),
    )
    return WebhookAck(status=outcome)
