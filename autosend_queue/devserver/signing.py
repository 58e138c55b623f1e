"""Signatures the devserver puts on what it sends: QStash JWTs and AutoSend webhook HMACs."""

import base64
import hashlib
import hmac
import time
import uuid

import jwt

SIGNATURE_LIFETIME_SECONDS = 300


def body_hash(body: bytes) -> str:
    """base64url(sha256(body)) without padding: the ``body`` claim of a QStash signature."""
    digest = hashlib.sha256(body).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def qstash_signature(signing_key: str, url: str, body: bytes) -> str:
    """The ``Upstash-Signature`` JWT for a request to ``url`` carrying ``body``."""
    now = int(time.time())
    claims = {
        "iss": "Upstash",
        "sub": url,
        "exp": now + SIGNATURE_LIFETIME_SECONDS,
        "nbf": now,
        "iat": now,
        "jti": f"jwt_{uuid.uuid4().hex}",
        "body": body_hash(body),
    }
    return jwt.encode(claims, signing_key, algorithm="HS256")


def webhook_signature(secret: str, body: bytes) -> str:
    """The ``X-Webhook-Signature`` of an AutoSend webhook: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
