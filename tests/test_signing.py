"""QStash signature verification: every rule of ``verify_qstash_signature`` has a test that fails
when the rule is removed."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
import qstash

from autosend_queue.exceptions import SignatureError
from autosend_queue.signing import verify_qstash_signature
from tests.signing import CURRENT_KEY, NEXT_KEY, OMIT, qstash_body_claim, qstash_signature

pytestmark = pytest.mark.usefixtures("qstash_signing_keys")

URL = "https://app.example.com/autosend/callback/0b6f4b5e-1c1e-4c8e-9a51-4a1f1f0c2c11/"
BODY = b'{"status": 200, "retried": 0, "maxRetries": 3}'


def refused_check(token: str | None, *, body: bytes = BODY, url: str = URL) -> str:
    with pytest.raises(SignatureError) as refusal:
        verify_qstash_signature(body, token, url)
    return refusal.value.check


def test_a_token_signed_with_the_current_key_is_accepted_and_its_claims_returned():
    claims = verify_qstash_signature(BODY, qstash_signature(BODY, URL), URL)
    assert (claims["iss"], claims["sub"]) == ("Upstash", URL)


def test_a_token_signed_with_the_next_key_is_accepted_after_a_rotation():
    assert verify_qstash_signature(BODY, qstash_signature(BODY, URL, key=NEXT_KEY), URL)


def test_a_token_signed_with_the_next_key_is_accepted_when_it_is_the_only_key(autosend_settings):
    autosend_settings(QSTASH_CURRENT_SIGNING_KEY="")
    assert verify_qstash_signature(BODY, qstash_signature(BODY, URL, key=NEXT_KEY), URL)


def test_a_token_signed_with_another_key_is_refused():
    token = qstash_signature(BODY, URL, key="sig_an0therKeyTheAttackerChose0000")
    assert refused_check(token) == "signature"


def test_without_any_signing_key_every_token_is_refused(autosend_settings):
    autosend_settings(QSTASH_CURRENT_SIGNING_KEY="", QSTASH_NEXT_SIGNING_KEY="")
    assert refused_check(qstash_signature(BODY, URL)) == "no_keys"


def test_an_expired_token_is_refused():
    token = qstash_signature(BODY, URL, issued_at=time.time() - 400)
    assert refused_check(token) == "expired"


def test_a_token_expired_within_the_leeway_is_accepted():
    now = int(time.time())
    token = qstash_signature(BODY, URL, issued_at=now - 300, exp=now - 2)
    assert verify_qstash_signature(BODY, token, URL)


def test_the_leeway_is_a_setting(autosend_settings):
    autosend_settings(SIGNATURE_LEEWAY=0)
    now = int(time.time())
    token = qstash_signature(BODY, URL, issued_at=now - 300, exp=now - 2)
    assert refused_check(token) == "expired"


def test_a_token_not_valid_yet_is_refused():
    future = time.time() + 60
    assert refused_check(qstash_signature(BODY, URL, issued_at=future)) == "not_yet_valid"


def test_a_token_valid_within_the_leeway_is_accepted():
    now = int(time.time())
    token = qstash_signature(BODY, URL, issued_at=now, nbf=now + 2)
    assert verify_qstash_signature(BODY, token, URL)


def test_a_token_from_another_issuer_is_refused():
    assert refused_check(qstash_signature(BODY, URL, iss="Mallory")) == "issuer"


def test_a_token_signed_for_another_url_is_refused():
    other = URL.replace("0b6f4b5e", "ffffffff")
    assert refused_check(qstash_signature(BODY, other)) == "subject"


def test_a_tampered_body_is_refused():
    token = qstash_signature(BODY, URL)
    assert refused_check(token, body=BODY.replace(b"200", b"500")) == "body"


def test_the_body_claim_is_accepted_without_padding():
    token = qstash_signature(BODY, URL, body=qstash_body_claim(BODY, padded=False))
    assert verify_qstash_signature(BODY, token, URL)


def test_a_body_claim_in_plain_base64_of_the_wrong_hash_is_refused():
    wrong = base64.urlsafe_b64encode(b"x" * 32).decode()
    assert refused_check(qstash_signature(BODY, URL, body=wrong)) == "body"


def test_a_body_claim_that_is_not_a_string_is_refused():
    assert refused_check(qstash_signature(BODY, URL, body=12345)) == "body"


def test_a_token_without_the_body_claim_is_refused():
    assert refused_check(qstash_signature(BODY, URL, body=OMIT)) == "missing_claim"


@pytest.mark.parametrize("claim", ["iss", "sub", "exp", "nbf"])
def test_a_token_without_a_required_claim_is_refused(claim):
    assert refused_check(qstash_signature(BODY, URL, **{claim: OMIT})) == "missing_claim"


def test_a_missing_header_is_refused():
    assert refused_check(None) == "missing_header"


def test_an_empty_header_is_refused():
    assert refused_check("") == "missing_header"


@pytest.mark.parametrize("token", ["not a jwt", "a.b.c", "....", "eyJ.eyJ.sig", "\u00e9\u00e9.x.y"])
def test_a_header_that_is_not_a_jwt_is_refused(token):
    assert refused_check(token) == "malformed"


def test_an_unsigned_token_is_refused():
    assert refused_check(qstash_signature(BODY, URL, algorithm="none")) == "algorithm"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_token_signed_with_another_hmac_algorithm_is_refused():
    assert refused_check(qstash_signature(BODY, URL, algorithm="HS512")) == "algorithm"


def test_a_claim_of_the_wrong_type_is_refused_not_raised():
    assert refused_check(qstash_signature(BODY, URL, exp="soon")) == "malformed"


@pytest.mark.parametrize("claims", [{"jti": 5}, {"iat": "noon"}], ids=["jti", "iat"])
def test_an_optional_claim_of_the_wrong_type_is_refused(claims):
    assert refused_check(qstash_signature(BODY, URL, **claims)) == "invalid_claim"


def test_the_refusal_names_neither_the_key_nor_the_token():
    token = qstash_signature(BODY, URL, key="sig_an0therKeyTheAttackerChose0000")
    with pytest.raises(SignatureError) as refusal:
        verify_qstash_signature(BODY, token, URL)
    message = str(refusal.value)
    assert CURRENT_KEY not in message
    assert NEXT_KEY not in message
    assert not any(part in message for part in token.split("."))


def test_tokens_from_the_test_helper_pass_the_qstash_sdk_receiver():
    """The helper signs as QStash does: the SDK's own Receiver accepts its tokens."""
    body = json.dumps({"status": 200}).encode()
    receiver = qstash.Receiver(CURRENT_KEY, NEXT_KEY)
    receiver.verify(signature=qstash_signature(body, URL), body=body.decode(), url=URL)


def test_a_token_of_the_sdk_receivers_shape_with_a_forged_signature_is_refused():
    token = qstash_signature(BODY, URL)
    header, payload, _ = token.split(".")
    forged = jwt.utils.base64url_encode(b"\x00" * 32).decode()
    assert refused_check(f"{header}.{payload}.{forged}") == "signature"
