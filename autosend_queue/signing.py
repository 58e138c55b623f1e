"""Verification of QStash's signed requests, done on the raw body before anything is read.

``verify_qstash_signature`` checks an ``Upstash-Signature`` JWT with PyJWT directly (the SDK's
Receiver ignores its clock tolerance, raises KeyError on a token without ``body`` and hides why the
current key failed). Every failure raises ``SignatureError`` whose ``check`` names the rule that
failed; messages never contain a key or the token. ``verify_qstash_request`` adapts it to the
``verify(request, raw_body)`` shape that ``views.verified_json_view`` stacks, so AutoSend's HMAC
webhook verification plugs in the same way.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import jwt
from django.http import HttpRequest
from jwt.exceptions import InvalidSubjectError

from autosend_queue.conf import app_settings
from autosend_queue.exceptions import SignatureError

SIGNATURE_HEADER = "Upstash-Signature"
ALGORITHM = "HS256"
ISSUER = "Upstash"
REQUIRED_CLAIMS = ["iss", "sub", "exp", "nbf", "body"]

# PyJWT's errors, most specific first (InvalidSignatureError is a DecodeError), and what they mean.
_CHECKS: list[tuple[type[jwt.PyJWTError], str, str]] = [
    (jwt.InvalidSignatureError, "signature", "matches neither the current nor the next key"),
    (jwt.InvalidAlgorithmError, "algorithm", f"the token is not signed with {ALGORITHM}"),
    (jwt.ExpiredSignatureError, "expired", "the token has expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid", "the token is not valid yet"),
    (jwt.InvalidIssuerError, "issuer", f"the issuer is not {ISSUER!r}"),
    (InvalidSubjectError, "subject", "the token was signed for another URL"),
    (jwt.MissingRequiredClaimError, "missing_claim", "a required claim is missing"),
    (jwt.DecodeError, "malformed", "the header is not a well-formed JWT"),
    (jwt.InvalidTokenError, "invalid_claim", "a claim has the wrong type"),
]


def verify_qstash_signature(
    raw_body: bytes, signature_header: str | None, url: str
) -> dict[str, Any]:
    """The claims of a valid QStash signature over ``raw_body`` for ``url``.

    Checks HS256 with the current key, then the next; ``iss``, ``sub`` == ``url``, ``exp`` and
    ``nbf`` (with ``SIGNATURE_LEEWAY`` seconds) and ``body`` == base64url(sha256(raw_body)).
    Raises ``SignatureError`` naming the failed check.
    """
    if not signature_header:
        raise SignatureError("missing_header", f"no {SIGNATURE_HEADER} header")
    claims = _decode_with_either_key(signature_header, url)
    _check_body_hash(claims["body"], raw_body)
    return claims


def verify_qstash_request(request: HttpRequest, raw_body: bytes) -> dict[str, Any]:
    """``verify_qstash_signature`` for a request, with ``sub`` built from ``PUBLIC_URL``.

    The request's Host header is never used: behind a proxy it is not the URL QStash called.
    """
    return verify_qstash_signature(
        raw_body,
        request.headers.get(SIGNATURE_HEADER),
        app_settings.public_url_for(request.path),
    )


def body_hash(raw_body: bytes) -> str:
    """base64url(sha256(raw_body)) without padding: what the ``body`` claim carries."""
    digest = hashlib.sha256(raw_body).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def signing_keys() -> list[str]:
    """The configured signing keys, current first; the next one is used after a rotation."""
    keys = [app_settings.QSTASH_CURRENT_SIGNING_KEY, app_settings.QSTASH_NEXT_SIGNING_KEY]
    return [key for key in keys if key]


def _decode_with_either_key(token: str, url: str) -> dict[str, Any]:
    keys = signing_keys()
    if not keys:
        raise SignatureError("no_keys", "no QStash signing key is configured")
    for key in keys:
        try:
            return _decode(token, key, url)
        except jwt.InvalidSignatureError:
            continue  # Try the next key; other failures are the token's, whatever the key.
        except jwt.PyJWTError as error:
            raise _signature_error(error) from None
    raise _signature_error(jwt.InvalidSignatureError())


def _decode(token: str, key: str, url: str) -> dict[str, Any]:
    return jwt.decode(
        token,
        key,
        algorithms=[ALGORITHM],
        issuer=ISSUER,
        subject=url,
        leeway=app_settings.SIGNATURE_LEEWAY,
        options={"require": REQUIRED_CLAIMS, "verify_sub": True},
    )


def _signature_error(error: jwt.PyJWTError) -> SignatureError:
    """Our own wording for PyJWT's error: its messages may quote parts of the token."""
    for error_type, check, message in _CHECKS:
        if isinstance(error, error_type):
            if isinstance(error, jwt.MissingRequiredClaimError):
                message = f"the token has no {error.claim!r} claim"
            return SignatureError(check, message)
    return SignatureError("invalid_token", "the token was refused")


def _check_body_hash(claimed: object, raw_body: bytes) -> None:
    if not isinstance(claimed, str) or claimed.rstrip("=") != body_hash(raw_body):
        raise SignatureError("body", "the body is not the one that was signed")
