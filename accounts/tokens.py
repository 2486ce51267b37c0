"""Key format and hashing. A key is `tm_` + 40 url-safe characters (240 random bits); tokens migrated from DRF's
authtoken keep their 40-hex key. Either way only sha256(key) is stored, so a database backup gives no access."""

import hashlib
import secrets

KEY_PREFIX = "tm_"


def new_key():
    return KEY_PREFIX + secrets.token_urlsafe(30)


def digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key):
    return key[:8]
