"""Standard Webhooks signing (https://www.standardwebhooks.com), plus a simple body-only HMAC header."""

import base64
import hashlib
import hmac
import secrets as _secrets

SECRET_PREFIX = "whsec_"


def generate_secret():
    """32 random bytes, base64: stored as is, shown to the user once as whsec_<base64>."""
    return base64.b64encode(_secrets.token_bytes(32)).decode()


def display_secret(secret):
    return f"{SECRET_PREFIX}{secret}"


def _key(secret):
    return base64.b64decode(secret)


def sign_v1(*, secret, msg_id, timestamp, body: bytes):
    message = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), message, hashlib.sha256).digest()).decode()


def sign_body_sha256(*, secret, body: bytes):
    return "sha256=" + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def signature_headers(*, secrets, msg_id, timestamp, body: bytes):
    """Headers for one attempt. `secrets`: current first, then a rotated-out one still in its grace period.
    Both signature headers carry one signature per secret, separated by a space, current first."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign_v1(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets
        ),
        "X-Webhook-Signature-256": " ".join(sign_body_sha256(secret=s, body=body) for s in secrets),
    }
