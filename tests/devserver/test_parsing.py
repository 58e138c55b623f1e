"""Small pure pieces: QStash durations, the backoff formula, the signature's body claim."""

import base64
import hashlib
import math

import jwt
import pytest

from autosend_queue.devserver.durations import parse_duration
from autosend_queue.devserver.messages import MAX_BACKOFF_SECONDS, backoff_seconds
from autosend_queue.devserver.signing import qstash_signature


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("24h", 86400), ("2d", 172800), ("3d5h12m", 277920), ("30", 30)],
)
def test_durations_are_read_as_qstash_writes_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "5 m", "1s2"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_backoff_grows_exponentially_up_to_a_day() -> None:
    assert backoff_seconds(1, None) == pytest.approx(math.exp(2.5))
    assert backoff_seconds(2, None) == pytest.approx(math.exp(5))
    assert backoff_seconds(10, None) == MAX_BACKOFF_SECONDS


def test_retry_after_replaces_the_backoff_but_not_beyond_a_day() -> None:
    assert backoff_seconds(1, "7") == 7
    assert backoff_seconds(1, "999999") == MAX_BACKOFF_SECONDS
    assert backoff_seconds(1, "Wed, 21 Oct 2015 07:28:00 GMT") == pytest.approx(math.exp(2.5))


def test_signature_claims_follow_qstash() -> None:
    key = "sig_" + "k" * 28  # PyJWT warns about HMAC keys under 32 bytes
    token = qstash_signature(key, "https://example.com/hook", b"{}")

    claims = jwt.decode(token, key, algorithms=["HS256"], options={"verify_sub": False})

    assert claims["iss"] == "Upstash"
    assert claims["sub"] == "https://example.com/hook"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["nbf"] == claims["iat"]
    assert claims["jti"]
    digest = base64.urlsafe_b64encode(hashlib.sha256(b"{}").digest()).decode()
    assert claims["body"] == digest.rstrip("=")
