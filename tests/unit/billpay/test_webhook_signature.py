"""Standard Webhooks verification, checked against the reference implementation (standardwebhooks)
and the emulator's signer, on the raw bytes."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
import standardwebhooks

from billpay.webhooks.signature import SignatureError, secret_key, verify
from billpay.webhooks.signing_secret import (
    CACHE_SECONDS,
    RETRY_SECONDS,
    CachedSigningKeys,
    SecretUnavailable,
    parse_secret_value,
)
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


@pytest.mark.parametrize("length", [16, 23, 24, 25, 32])
def test_secrets_decode_padded_or_not_on_every_python(length):
    """Svix may drop the base64 padding; Python 3.13 (the Lambda runtime) rejects surplus padding,
    which `make test-lambda-python` runs this against."""
    key = secrets.token_bytes(length)
    padded = base64.b64encode(key).decode()
    assert secret_key("whsec_" + padded) == key
    assert secret_key("whsec_" + padded.rstrip("=")) == key
    with pytest.raises(ValueError, match="base64"):
        secret_key("whsec_" + padded.rstrip("=") + "*")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_secret_is_cached_for_a_bounded_time_and_a_rotation_reaches_the_cache(aws):
    """Secrets Manager (moto) holds the secret; the ingress reads it once per CACHE_SECONDS."""
    client, clock = aws("secretsmanager"), Clock()
    old, new = new_secret(), new_secret()
    arn = client.create_secret(Name="codat-webhook", SecretString=old)["ARN"]
    keys = CachedSigningKeys(client, arn, clock)
    assert keys.keys() == [secret_key(old)]
    client.put_secret_value(
        SecretId=arn, SecretString=json.dumps({"current": new, "previous": old})
    )
    clock.now = CACHE_SECONDS - 1
    assert keys.keys() == [secret_key(old)]  # still the cached value
    clock.now = CACHE_SECONDS
    assert keys.keys() == [secret_key(new), secret_key(old)]  # both during the rotation


def test_a_missing_unreadable_or_unset_secret_fails_closed_and_is_read_again_soon(aws):
    client, clock = aws("secretsmanager"), Clock()
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:codat-webhook-AbCdEf"
    keys = CachedSigningKeys(client, arn, clock)
    with pytest.raises(SecretUnavailable, match="could not be read"):
        keys.keys()  # no such secret (or no permission): never an empty key list
    arn = client.create_secret(Name="codat-webhook", SecretString="placeholder")["ARN"]
    keys = CachedSigningKeys(client, arn, clock)
    with pytest.raises(SecretUnavailable, match="not a whsec_"):
        keys.keys()  # the deploy's placeholder: nothing verifies until the operator sets it
    secret = new_secret()
    client.put_secret_value(SecretId=arn, SecretString=secret)
    clock.now = RETRY_SECONDS - 1
    with pytest.raises(SecretUnavailable):
        keys.keys()  # a failure is remembered briefly, not re-read on every request
    clock.now = RETRY_SECONDS
    assert keys.keys() == [secret_key(secret)]
