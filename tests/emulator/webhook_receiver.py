"""A tiny webhook receiver on 127.0.0.1 that verifies every delivery the way the project's
receiver will (the `standardwebhooks` package on the raw body) and records what it got."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError


class Receiver:
    def __init__(self) -> None:
        self.secret: str | None = None
        self.received: list[dict] = []  # verified deliveries: {headers, body, envelope}
        self.rejected: list[str] = []
        self.statuses: list[int] = []  # answers to give before 200s
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    try:
                        assert receiver.secret, "no secret set on the receiver"
                        envelope = Verifier(receiver.secret).verify(body, headers)
                    except (WebhookVerificationError, AssertionError) as error:
                        receiver.rejected.append(str(error))
                        status = 400
                    else:
                        receiver.received.append(
                            {"headers": headers, "body": body, "envelope": envelope,
                             "status": status, "at": time.monotonic()}
                        )  # fmt: skip
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/codat/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> list[dict]:
        with self.lock:
            return [r["envelope"] for r in self.received if 200 <= r["status"] < 300]

    def event_types(self) -> list[str]:
        return [e["eventType"] for e in self.accepted()]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return False


def dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True)
