"""Our Standard Webhooks signatures verify with `standardwebhooks` (the receiver side)."""

import base64
import json
import secrets
import time

import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from codat_emulator.signing import (
    InvalidSecret,
    generate_secret,
    secret_key,
    sign,
    signature_headers,
)


def _body():
    envelope = {"id": secrets.token_hex(8), "eventType": "read.completed", "n": "£"}
    return json.dumps(envelope).encode()


def test_generated_secrets_are_whsec_base64_and_distinct():
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_")
    assert first != second
    assert len(secret_key(first)) == 24


def test_signature_verifies_with_standardwebhooks():
    # Given a secret, a message id, now, and a body with non-ASCII bytes
    secret, body, message_id = generate_secret(), _body(), "msg_" + secrets.token_hex(8)
    headers = signature_headers(secret, message_id, int(time.time()), body)
    # Then the receiver's verifier accepts the exact bytes and returns the parsed JSON
    assert Verifier(secret).verify(body, headers) == json.loads(body)
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["webhook-id"] == message_id


def test_signature_matches_the_documented_formula():
    secret = generate_secret()
    body, ts = b'{"a":1}', 1_700_000_000
    import hashlib
    import hmac

    expected = hmac.new(secret_key(secret), b"id1.1700000000." + body, hashlib.sha256).digest()
    assert sign(secret, "id1", ts, body) == "v1," + base64.b64encode(expected).decode()


@pytest.mark.parametrize("tamper", ["body", "id", "secret", "timestamp"])
def test_any_change_fails_verification(tamper):
    secret, body, now = generate_secret(), _body(), int(time.time())
    headers = signature_headers(secret, "msg_1", now, body)
    if tamper == "body":
        body = body.replace(b"read", b"reed")
    elif tamper == "id":
        headers["webhook-id"] = "msg_2"
    elif tamper == "secret":
        secret = generate_secret()
    else:
        headers["webhook-timestamp"] = str(now + 1)
    with pytest.raises(WebhookVerificationError):
        Verifier(secret).verify(body, headers)


def test_stale_timestamp_is_rejected_by_the_receiver():
    secret, body = generate_secret(), _body()
    headers = signature_headers(secret, "msg_1", int(time.time()) - 600, body)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Verifier(secret).verify(body, headers)


@pytest.mark.parametrize("bad", ["whsec_", "whsec_not base64!", ""])
def test_bad_secrets_are_refused(bad):
    with pytest.raises(InvalidSecret):
        sign(bad, "id", 1, b"{}")
