"""NT² Premium (PROTOCOL.md §9): entitlement rows, their summary on the vault head, promo codes,
Lemon Squeezy webhooks and checkout. No chalice import: storage is passed in."""
