"""Protocol limits (PROTOCOL.md §8) shared by the server and the reference client."""

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_PUSH_ITEMS = 500
MAX_CIPHERTEXT_BYTES = 256 * 1024
DEFAULT_PULL_LIMIT = 200
MAX_PULL_LIMIT = 1000
MAX_PAGE_CIPHERTEXT_CHARS = 4 * 1024 * 1024
NONCE_TTL_MS = 120_000
SESSION_TTL_MS = 3_600_000
MAX_OUTSTANDING_NONCES = 10  # per keyDid (§3)
MAX_SESSIONS_PER_REPLICA = 10  # live sessions; an 11th ends the oldest (§3)
MAX_ACTIVE_DEVICES = 100  # per vault, not revoked (§7)
DEVICE_PAGE = 100  # devices per GET /api/devices page (§7)
UNREGISTERED_LIFETIME_MS = 24 * 3_600_000  # rows of keys that never register (§3)
MAX_VERIFIER_CHARS = 1024
MAX_PUBLIC_KEYS_BYTES = 4096
MIN_KDF_ITERATIONS = 100_000
MAX_KDF_ITERATIONS = 10_000_000
MAX_INT64 = 2**63 - 1
MAX_ECHO_CHARS = 100  # §1: an error message quotes at most this much of the request
MAX_REPORTED_PROBLEMS = 5  # §1: and names at most this many problems of a body
KDF_ALGORITHM = "PBKDF2-SHA256"
PROTOCOL_VERSION = "1.2"
