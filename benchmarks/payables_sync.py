"""What syncing a company's payables costs: Codat calls, DynamoDB requests and wall time, through
the deployed product (cdk.out on the local cloud) against the Codat emulator.

An SMB authorizes through the emulator's Link with `--bills` seeded bills (suppliers and accounts
come with them); then the initial load runs (one execution of the sync state machine, steps as the
Lambda's time allows), then, after `--changes` bills are paid outside the product, an incremental
run. Codat calls are the company's requests as the emulator counts them against its quota;
DynamoDB requests are counted at moto's backend, for the payables table only.

    make synth && .venv/bin/python -m benchmarks.payables_sync [--bills 20000] [--changes 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from billpay.bills.ports import BillFilter
from localcloud.payables import LinkedSmb, linked_smb
from localcloud.product import ProductCloud, running_product

CDK_OUT = Path(__file__).resolve().parents[1] / "cdk.out"
WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
READS = ("get_item", "batch_get_item", "query", "scan")
# The target this benchmark holds the sync to (docs/benchmarks.md).
TARGET_SECONDS_PER_10K_BILLS = 150


class DynamoRequests:
    """Requests to one table, counted where moto's DynamoDB API receives them (the handler of
    each action: a transaction is one request however many items it writes)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.counts: Counter[str] = Counter()
        self.items_written = 0

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        from moto.dynamodb.responses import DynamoHandler

        originals = {name: getattr(DynamoHandler, name) for name in WRITES + READS}

        def wrap(name: str, original: Any) -> Any:
            def counted(handler: Any) -> Any:
                body = handler.body
                if self.table in json.dumps(body, default=str)[:4000] and (
                    body.get("TableName") in (None, self.table)
                ):
                    self.counts[name] += 1
                    if name == "transact_write_items":
                        self.items_written += len(body["TransactItems"])
                    elif name in WRITES:
                        self.items_written += 1
                return original(handler)

            return counted

        for name, original in originals.items():
            setattr(DynamoHandler, name, wrap(name, original))
        try:
            yield
        finally:
            for name, original in originals.items():
                setattr(DynamoHandler, name, original)

    def writes(self) -> int:
        return sum(self.counts[name] for name in WRITES)

    def reads(self) -> int:
        return sum(self.counts[name] for name in READS)


def run(product: ProductCloud, smb: LinkedSmb, cause: str) -> dict[str, Any]:
    dynamo = DynamoRequests(product.cloud.output("PayablesTableName"))
    calls = smb.codat_calls()
    started = time.perf_counter()
    with dynamo.counting():
        arn = smb.start_sync(cause)
        done = smb.finished(arn, timeout=3600)
    seconds = time.perf_counter() - started
    history = product.cloud.history(arn)
    return {
        "codat_calls": smb.codat_calls() - calls,
        "pages": done["stats"]["pages"],
        "records": done["stats"]["records"],
        "written": done["stats"]["written"],
        "dynamo_writes": dynamo.writes(),
        "dynamo_items_written": dynamo.items_written,
        "transactions": dynamo.counts["transact_write_items"],
        "dynamo_reads": dynamo.reads(),
        "scans": dynamo.counts["scan"],
        "steps": sum(1 for e in history if e["type"] == "LambdaFunctionSucceeded"),
        "seconds": seconds,
    }


def copied_bills(smb: LinkedSmb) -> dict[str, Any]:
    """The product's copy of every bill, read from its table a thousand at a time (through the
    API, 100 a page, a 20,000-bill check costs more than the sync on moto)."""
    copy, found, start = smb.copy(), {}, None
    while True:
        bills, start = copy.query_bills(smb.company_id, BillFilter(), 1000, start)
        found.update({b.bill_id: b for b in bills})
        if start is None:
            return found


@dataclass(frozen=True)
class Figures:
    bills: int
    changes: int
    suppliers: int
    link_seconds: float
    initial: dict[str, Any]
    incremental: dict[str, Any]
    # The copy holds every bill Codat holds, and the changes.
    same: bool

    @property
    def expected_pages(self) -> int:
        """Pages of a full read: suppliers and bills 100 a page, then the payment accounts."""
        return math.ceil(self.suppliers / 100) + math.ceil(self.bills / 100) + 1


def measure(
    product: ProductCloud, bills: int, changes: int, seed: str | None = "benchmark"
) -> Figures:
    """An SMB with `bills` bills: its initial load, then `changes` bills paid outside the product
    and the incremental run that follows."""
    seeded = time.perf_counter()
    smb = linked_smb(product, bills=bills, seed=seed)
    link_seconds = time.perf_counter() - seeded
    suppliers = len(smb.codat_suppliers())
    initial = run(product, smb, "initial")
    open_bills = [b for b in smb.codat_bills().values() if b["status"] == "Open"]
    paid = open_bills[:changes]
    for bill in paid:
        smb.control(f"bills/{bill['id']}/pay")
    incremental = run(product, smb, "after-changes")
    copied = copied_bills(smb)
    same = set(copied) == set(smb.codat_bills()) and all(
        copied[b["id"]].status == "Paid" for b in paid
    )
    return Figures(bills, len(paid), suppliers, link_seconds, initial, incremental, same)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bills", type=int, default=20_000)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args(argv)
    # The handlers run in this process: keep their logs to warnings so the table stays readable.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with running_product(CDK_OUT, time_scale=1.0) as product:
        figures = measure(product, args.bills, args.changes)
    initial, incremental = figures.initial, figures.incremental
    target = TARGET_SECONDS_PER_10K_BILLS * figures.bills / 10_000
    print(
        f"{figures.bills} bills, {figures.suppliers} suppliers (Link loaded them in "
        f"{figures.link_seconds:.1f} s); pages expected for a full read: {figures.expected_pages}; "
        f"target: the initial load in {target:.0f} s or less, one Codat call per page, no scan. "
        f"The copy holds every bill Codat holds and the {figures.changes} payments: "
        f"{figures.same}.\n"
    )
    rows = (
        ("Codat calls", "codat_calls"),
        ("pages read", "pages"),
        ("records read", "records"),
        ("records written", "written"),
        ("DynamoDB write requests", "dynamo_writes"),
        ("  of which TransactWriteItems (up to 100 records each)", "transactions"),
        ("DynamoDB items written", "dynamo_items_written"),
        ("DynamoDB read requests", "dynamo_reads"),
        ("scans", "scans"),
        ("Lambda steps", "steps"),
        ("wall time (s)", "seconds"),
    )
    print(f"| figure | initial load | incremental, {figures.changes} bills paid outside |")
    print("| --- | --- | --- |")
    for label, key in rows:
        first, second = initial[key], incremental[key]
        if isinstance(first, float):
            print(f"| {label} | {first:.1f} | {second:.1f} |")
        else:
            print(f"| {label} | {first} | {second} |")
    verdict = "met" if initial["seconds"] <= target else "MISSED"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nTarget {verdict}: {initial['seconds']:.0f} s for {figures.bills} bills "
        f"(<= {target:.0f} s)."
        f" Load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} cores."
    )


if __name__ == "__main__":
    main()
