"""What one payment costs on the happy path and under each fault: Codat calls, state machine
transitions, status changes and wall time, through the deployed product (cdk.out on the local
cloud) against the Codat emulator.

Codat's 90-minute idempotency window is compressed to `--window` seconds (product policy and
emulator key TTL alike), waits run in real time, and the Codat client's read timeout is the
product's own (10 s). Codat calls are counted at httpx, which the in-process Lambdas share.

    make synth && .venv/bin/python -m benchmarks.payments [--runs 3] [--window 15]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from billpay.payments.models import PaymentPolicy
from localcloud.payments import (
    Smb,
    emulator_limits,
    paid_record_lost_once,
    ready_smb,
    set_payment_policy,
)
from localcloud.product import ProductCloud, running_product

CDK_OUT = Path(__file__).resolve().parents[1] / "cdk.out"


@dataclass(frozen=True)
class Scenario:
    name: str
    arrange: Callable[[Smb], contextlib.AbstractContextManager[Any]]


def _fault(kind: str, **rule: Any) -> Callable[[Smb], contextlib.AbstractContextManager[Any]]:
    def arrange(smb: Smb) -> contextlib.AbstractContextManager[Any]:
        smb.fault(kind, **{"count": 1, **rule})
        return contextlib.nullcontext()

    return arrange


SCENARIOS = (
    Scenario("happy path", lambda smb: contextlib.nullcontext()),
    Scenario("3 x 429 (Retry-After 1 s)", _fault("rate_limit", count=3, retry_after_seconds=1)),
    Scenario("applied, then timeout (success stored)", _fault("applied_then_timeout")),
    Scenario("applied, then 500 (stored)", _fault("applied_then_error")),
    Scenario("hang: lands 11 s later", _fault("latency", latency_ms=11_000)),
    Scenario("500 not applied (stored): new key after the window", _fault("error")),
    Scenario("Lambda dies after Codat's answer", lambda smb: paid_record_lost_once()),
)


class CodatCalls:
    """Requests the product's functions send to the emulator (httpx is shared in-process)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.counts: Counter[str] = Counter()

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        original = httpx.Client.send

        def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            if str(request.url).startswith(self.base_url):
                self.counts[request.method] += 1
            return original(client, request, **kwargs)

        httpx.Client.send = send  # type: ignore[method-assign]
        try:
            yield
        finally:
            httpx.Client.send = original  # type: ignore[method-assign]


@dataclass
class Result:
    scenario: str
    status: str
    codat_reads: int
    codat_payments: int
    transitions: int
    status_changes: int
    attempts: int
    seconds: float
    platform_payments: int


def pay_once(product: ProductCloud, scenario: Scenario, n: int) -> Result:
    smb = ready_smb(product, [Decimal("100.00")])
    bill, payment_id = smb.bills[0], f"bench-{n}"
    calls = CodatCalls(product.emulator.base_url)
    with scenario.arrange(smb), calls.counting():
        started = time.perf_counter()
        answer = smb.pay(bill, payment_id, "100.00")
        answer.raise_for_status()
        view = smb.wait_for_payment(bill, payment_id, timeout=300)
        seconds = time.perf_counter() - started
    product.emulator.faults.clear()
    history = smb.history(payment_id)
    return Result(
        scenario=scenario.name,
        status=view["status"],
        codat_reads=calls.counts["GET"],
        codat_payments=calls.counts["POST"],
        transitions=sum(1 for e in history if e["type"].endswith("StateEntered")),
        status_changes=len(view["history"]) - 1,
        attempts=view["attempts"],
        seconds=seconds,
        platform_payments=len(smb.codat_payments(bill)),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=int, default=15, help="idempotency window, seconds")
    args = parser.parse_args(argv)
    policy = PaymentPolicy(
        idempotency_window_seconds=args.window,
        window_margin_seconds=2,
        reconcile_schedule_seconds=(1,),
        max_attempts=2,
        bill_busy_retry_seconds=1,
    )
    overrides = {**emulator_limits(policy), "fault_hang_seconds": 12.0}
    results: list[Result] = []
    with running_product(CDK_OUT, time_scale=1.0, emulator=overrides) as product:
        set_payment_policy(product, policy)
        pay_once(product, SCENARIOS[0], -1)  # cold starts of the happy path, apart
        for scenario in SCENARIOS:
            for _ in range(args.runs):
                results.append(pay_once(product, scenario, len(results)))
    print(
        f"Window {args.window} s (margin 2 s), bill read every 1 s while UNKNOWN, "
        f"{args.runs} runs each; medians.\n"
    )
    print(
        "| scenario | end | Codat GETs | Codat POSTs | transitions | status changes | attempts "
        "| wall s | payments in the platform |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario in SCENARIOS:
        rows = [r for r in results if r.scenario == scenario.name]
        ends = sorted({r.status for r in rows})
        made = sorted({r.platform_payments for r in rows})

        def median(field: str, rows: list[Result] = rows) -> str:
            value = statistics.median(getattr(r, field) for r in rows)
            return f"{value:.1f}" if field == "seconds" else f"{value:g}"

        print(
            f"| {scenario.name} | {'/'.join(ends)} | {median('codat_reads')} "
            f"| {median('codat_payments')} | {median('transitions')} "
            f"| {median('status_changes')} | {median('attempts')} | {median('seconds')} "
            f"| {'/'.join(map(str, made))} |"
        )


if __name__ == "__main__":
    main()
