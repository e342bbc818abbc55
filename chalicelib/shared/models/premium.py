"""§9 Premium: redeem, checkout, webhook acknowledgement (the premium object is PremiumOut)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chalicelib.shared.models import Request, Response
from chalicelib.shared.models.sync import PremiumOut

__all__ = ["CheckoutRequest", "CheckoutResponse", "PremiumOut", "RedeemRequest", "WebhookAck"]


class RedeemRequest(Request):
    code: str = Field(min_length=1, max_length=128)


class CheckoutRequest(Request):
    """Checkout takes no fields (an empty body or `{}`)."""


class CheckoutResponse(Response):
    url: str


class WebhookAck(Response):
    """What the webhook did with an authentic event (any 2xx stops Lemon Squeezy's retries)."""

    status: Literal["applied", "stale", "ignored"]
