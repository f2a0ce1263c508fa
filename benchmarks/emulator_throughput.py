"""Requests per second the Codat emulator sustains for the two calls that matter at scale:
listing bills (a page of 100 from a company holding 10,000) and paying a bill.

The server runs in its own process (``--serve``, the same app as ``codat-emulator``) on 127.0.0.1
with a free port; the load comes from client threads here, each with its own httpx connection.
Every phase is bounded in request count and wall time, so the run always stops by itself.

    .venv/bin/python -m benchmarks.emulator_throughput [--bills 10000] [--requests 2000]
        [--seconds 20] [--clients 1,4]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import httpx

STATUS_CYCLE = ("Open", "Open", "PartiallyPaid", "Paid", "Paid", "Void", "Draft", "Open")


def serve(port: int, bills: int) -> None:
    """Child process: build a company holding ``bills`` bills, print its ids, serve until killed."""
    import uvicorn

    from codat_emulator.app import create_app
    from codat_emulator.config import EmulatorConfig, Limits
    from codat_emulator.store import BankAccount, Bill, BillLine, DataSet, Store, Supplier

    # The daily quota would stop a benchmark after 2,000 calls; this measures throughput.
    config = EmulatorConfig(
        port=port,
        api_key=os.environ["CODAT_EMULATOR_API_KEY"],
        limits=Limits(daily_quota_base=10_000_000),
    )
    store = Store(daily_quota_base=config.limits.daily_quota_base)
    company = store.create_company("Benchmark Ltd", config.base_url)["id"]
    connection = store.create_connection(company, "gbol", config.base_url)["id"]
    store.set_connection_status(company, connection, "Linked")
    suppliers = [Supplier(f"sup-{n}", f"Supplier {n}") for n in range(50)]
    records = []
    for n in range(bills):
        status = STATUS_CYCLE[n % len(STATUS_CYCLE)]
        total = Decimal(1000 + n % 500).quantize(Decimal("0.01"))
        due = {"Open": total, "Draft": total, "PartiallyPaid": total / 2}.get(status, Decimal(0))
        records.append(
            Bill(
                id=f"bill-{n:06d}",
                supplier_id=f"sup-{n % 50}",
                issue_date="2024-01-01",
                due_date="2024-02-01",
                currency="GBP",
                status=status,
                total_amount=total,
                amount_due=due.quantize(Decimal("0.01")),
                reference=f"INV-{n}",
                line_items=[BillLine(description="Goods", unit_amount=total)],
            )
        )
    account = BankAccount("bank-1", "Current", "Debit", "12345678", "GBP")
    store.load_dataset(
        company,
        connection,
        DataSet(suppliers=suppliers, bills=records, bank_accounts=[account]),
    )
    open_bills = [b.id for b in records if b.status == "Open"]
    print(
        json.dumps({"company": company, "connection": connection, "open": open_bills}), flush=True
    )
    uvicorn.run(
        create_app(config, store), host="127.0.0.1", port=port, log_level="error", access_log=False
    )


@dataclass
class Result:
    name: str
    clients: int
    requests: int
    seconds: float
    errors: int
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def line(self) -> str:
        lat = sorted(self.latencies_ms)
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return (
            f"| {self.name} | {self.clients} | {self.requests} | {self.rps:,.0f} | "
            f"{p50:.1f} | {p99:.1f} | {self.errors} |"
        )


def run_phase(
    name: str,
    clients: int,
    max_requests: int,
    max_seconds: float,
    make_request: Callable[[httpx.Client, int], httpx.Response],
    expected_status: int,
    client_factory: Callable[[], httpx.Client],
) -> Result:
    counter = iter(range(max_requests))
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + max_seconds

    def worker() -> None:
        with client_factory() as client:
            while time.perf_counter() < deadline:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                started = time.perf_counter()
                response = make_request(client, n)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != expected_status:
                        errors[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(
        name, clients, len(latencies), time.perf_counter() - started, errors[0], latencies
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bills", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2_000, help="per phase, at most")
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase, at most")
    parser.add_argument("--clients", default="1,4", help="concurrent client threads to try")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.bills)
        return

    api_key = secrets.token_urlsafe(24)
    port = free_port()
    env = {**os.environ, "CODAT_EMULATOR_API_KEY": api_key}
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, __file__, "--serve", str(port), "--bills", str(args.bills)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert server.stdout is not None
        ids = json.loads(server.stdout.readline())
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base_url + "/companies", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

        import base64

        headers = {"Authorization": "Basic " + base64.b64encode(api_key.encode()).decode()}

        def client() -> httpx.Client:
            return httpx.Client(base_url=base_url, headers=headers, timeout=30)

        payables = f"/companies/{ids['company']}/connections/{ids['connection']}/payables"
        with client() as probe:
            page = probe.get(payables + "/bills").json()
        assert len(page["results"]) == 100, "expected a full page of 100 bills"
        token = page["pagination"]["continuationToken"]
        open_bills: list[str] = ids["open"]

        def list_first_page(c: httpx.Client, n: int) -> httpx.Response:
            return c.get(payables + "/bills")

        def list_next_page(c: httpx.Client, n: int) -> httpx.Response:
            return c.get(payables + "/bills", params={"continuationToken": token})

        def pay(c: httpx.Client, n: int) -> httpx.Response:
            bill = open_bills[n % len(open_bills)]
            return c.post(
                f"{payables}/bills/{bill}/payment",
                json={"amount": 0.01, "date": "2024-03-01", "accountRef": {"id": "bank-1"}},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )

        results = []
        for clients in (int(c) for c in args.clients.split(",")):
            for name, request, status in (
                ("list bills, first page of 100", list_first_page, 200),
                ("list bills, page 2 by continuationToken", list_next_page, 200),
                ("pay a bill (Idempotency-Key)", pay, 201),
            ):
                results.append(
                    run_phase(name, clients, args.requests, args.seconds, request, status, client)
                )
        print(
            f"Codat emulator, {args.bills} bills, up to {args.requests} requests "
            f"or {args.seconds:.0f} s per phase, Python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs"
        )
        print("| call | clients | requests | req/s | p50 ms | p99 ms | errors |")
        print("|---|---|---|---|---|---|---|")
        for result in results:
            print(result.line())
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
