"""The hosted Lemon Squeezy checkout link for a vault's key (§9); no network call."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from chalicelib.errors import ApiError, ErrorCode

KEY_DID_PARAM = "checkout[custom][key_did]"


def checkout_url(base_url: str, key_did: str) -> str:
    """`base_url` with `checkout[custom][key_did]=<keyDid>` added (its other parameters kept).

    Lemon Squeezy hands `checkout[custom]` back as `meta.custom_data` in every webhook of the
    subscription, which is how the webhook finds the vault.
    """
    if not base_url:
        raise ApiError(
            ErrorCode.UNAVAILABLE,
            "Checkout is not configured on this server.",
            {"Retry-After": "3600"},
        )
    parts = urlsplit(base_url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != KEY_DID_PARAM
    ]
    query.append((KEY_DID_PARAM, key_did))
    return urlunsplit(parts._replace(query=urlencode(query)))
