"""Standard Webhooks verification, checked against the reference implementation (standardwebhooks)
and the emulator's signer, on the raw bytes."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
import standardwebhooks

from billpay.webhooks.signature import SignatureError, secret_key, verify
from billpay.webhooks.signing_secret import SecretUnavailable, parse_secret_value
from codat_emulator.signing import signature_headers

NOW = 1_790_000_000


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def reference_headers(secret: str, webhook_id: str, body: bytes, at: int = NOW) -> dict[str, str]:
    from datetime import UTC, datetime

    signature = standardwebhooks.Webhook(secret).sign(
        webhook_id, datetime.fromtimestamp(at, UTC), body.decode()
    )
    return {"webhook-id": webhook_id, "webhook-timestamp": str(at), "webhook-signature": signature}


BODY = json.dumps({"id": "e1", "eventType": "read.completed", "payload": {}}).encode()


def test_a_signature_made_by_the_reference_library_verifies():
    secret = new_secret()
    headers = reference_headers(secret, "msg_1", BODY)
    assert verify(headers, BODY, [secret_key(secret)], NOW).webhook_id == "msg_1"


def test_a_signature_made_by_the_emulator_verifies_and_svix_names_are_accepted():
    secret = new_secret()
    headers = signature_headers(secret, "msg_2", NOW, BODY)
    svix = {k.replace("webhook-", "svix-"): v for k, v in headers.items()}
    assert verify(svix, BODY, [secret_key(secret)], NOW).webhook_id == "msg_2"


def test_one_of_several_signatures_and_one_of_two_keys_is_enough():
    old, new = new_secret(), new_secret()
    headers = reference_headers(old, "msg_3", BODY)
    headers["webhook-signature"] = "v1,bm90IGl0 " + headers["webhook-signature"]
    assert verify(headers, BODY, [secret_key(new), secret_key(old)], NOW)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, b: (h, b + b" "), "no signature matches"),
        (lambda h, b: ({**h, "webhook-id": "msg_other"}, b), "no signature matches"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW - 301)}, b), "tolerance"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW + 301)}, b), "tolerance"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "not a number"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), "missing"),
        (lambda h, b: ({**h, "webhook-signature": "v2,abc"}, b), "no v1 signature"),
    ],
)
def test_anything_else_is_refused(change, reason):
    secret = new_secret()
    headers, body = change(reference_headers(secret, "msg_4", BODY), BODY)
    with pytest.raises(SignatureError, match=reason):
        verify(headers, body, [secret_key(secret)], NOW)


def test_a_wrong_key_and_no_key_are_refused():
    headers = reference_headers(new_secret(), "msg_5", BODY)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(headers, BODY, [secret_key(new_secret())], NOW)
    with pytest.raises(SignatureError, match="no signing secret"):
        verify(headers, BODY, [], NOW)


def test_secret_values_one_secret_or_current_and_previous():
    one, two = new_secret(), new_secret()
    assert parse_secret_value(one) == [secret_key(one)]
    rotating = json.dumps({"current": one, "previous": two})
    assert parse_secret_value(rotating) == [secret_key(one), secret_key(two)]
    for bad in ("", "whsec_!!!", "{not json", json.dumps({"previous": one}), "placeholder-$%"):
        with pytest.raises(SecretUnavailable):
            parse_secret_value(bad)
