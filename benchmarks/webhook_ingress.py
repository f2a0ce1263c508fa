"""What a Codat webhook costs the ingress function: cold-start imports and CPU per event.

    .venv/bin/python -m benchmarks.webhook_ingress

Imports: the median of fresh interpreters (7 each) importing one module from bytecode (a warm
cache, as the shipped code and layer are compiled), minus a bare interpreter. (Not from source:
the working copy and .venv hold bytecode of their own, so "no bytecode" cannot be had here;
`benchmarks/packaging.py` measures both on a replica of the Lambda layer.) Compared: the ingress handler, the processor handler, and a handler that imports the
SDK stack (Powertools' event handler, pydantic models, the Codat SDK), as a webhook receiver built
on them would.

CPU per event: `time.process_time()` over N calls of `intake.receive` with in-memory store and
queue (signature check, envelope parse, the item to store), beside the same work done with
`standardwebhooks` and a pydantic envelope. One run, one machine: compare ratios, not absolutes.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 7
EVENTS = 5000

SDK_STACK = "SDK stack (Powertools event handler + pydantic + Codat SDK)"
CASES = {
    "ingress (billpay.webhooks.ingress)": "import billpay.webhooks.ingress",
    "processor (billpay.webhooks.processor)": "import billpay.webhooks.processor",
    SDK_STACK: (
        "import aws_lambda_powertools.event_handler, pydantic, boto3, "
        "codat_sync_for_payables.sdk, billpay.webhooks.models"
    ),
}


def _run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: S603
    return time.perf_counter() - start


def import_ms() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache:
        cached = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        cached.pop("PYTHONDONTWRITEBYTECODE", None)
        bare = [sys.executable, "-c", "pass"]
        for label, statement in CASES.items():
            command = [sys.executable, "-c", statement]
            _run(command, cached)  # fill the bytecode cache
            runs = [_run(command, cached) for _ in range(REPEATS)]
            baseline = [_run(bare, cached) for _ in range(REPEATS)]
            figures[label] = 1000 * (statistics.median(runs) - statistics.median(baseline))
    return figures


def _event() -> tuple[dict[str, str], bytes, str]:
    secret = "whsec_" + base64.b64encode(b"b" * 24).decode()
    body = json.dumps(
        {
            "id": "743ec94a-8aa4-44bb-8bd4-e1855ee0e74b",
            "eventType": "read.completed",
            "generatedDate": "2026-11-25T10:00:00Z",
            "payload": {
                "referenceCompany": {"id": "c1", "tags": {"billpayCompanyId": "smb-1"}},
                "dataTypes": [
                    {"connectionId": "x", "dataType": d, "recordsModified": True,
                     "status": "Complete"}
                    for d in ("bills", "suppliers", "bankAccounts", "billPayments", "company")
                ],
            },
        }
    ).encode()  # fmt: skip
    from billpay.webhooks.signature import secret_key, sign

    now = int(datetime.now(UTC).timestamp())
    headers = {
        "content-type": "application/json",
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": "v1," + sign(secret_key(secret), "msg_1", now, body),
    }
    return headers, body, secret


def cpu_us_per_event() -> dict[str, float]:
    from billpay.webhooks import intake
    from billpay.webhooks.signature import secret_key

    headers, body, secret = _event()
    keys = [secret_key(secret)]

    class Keys:
        def keys(self) -> list[bytes]:
            return keys

    class Store:
        def add(self, event: object) -> None:
            return None

    class Queue:
        def send(self, webhook_id: str) -> None:
            return None

    def ours() -> None:
        answer = intake.receive(
            headers, body, signing=Keys(), store=Store(), queue=Queue(), now=datetime.now(UTC)
        )
        assert answer.status == 200

    import standardwebhooks

    from billpay.webhooks.models import Envelope

    reference = standardwebhooks.Webhook(secret)

    def with_libraries() -> None:
        reference.verify(body.decode(), headers)
        Envelope.model_validate_json(body)

    figures = {}
    for label, work in (
        ("ingress rules (hmac + json, stdlib)", ours),
        ("standardwebhooks.verify + pydantic envelope", with_libraries),
    ):
        for _ in range(200):
            work()
        start = time.process_time()
        for _ in range(EVENTS):
            work()
        figures[label] = 1e6 * (time.process_time() - start) / EVENTS
    return figures


def main() -> None:
    figures = import_ms()
    sdk = figures[SDK_STACK]
    print("| cold-start import, from bytecode (ms over bare python) | ms | / SDK stack |")
    print("| --- | --- | --- |")
    for label, ms in figures.items():
        print(f"| {label} | {ms:.0f} | {ms / sdk:.2f} |")
    print(f"\n| CPU per event ({EVENTS} events) | µs |\n| --- | --- |")
    for label, value in cpu_us_per_event().items():
        print(f"| {label} | {value:.0f} |")


if __name__ == "__main__":
    main()
