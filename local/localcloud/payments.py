"""Paying bills on the local cloud: an SMB READY in the product and Linked in the Codat emulator,
with open bills, and the product's copy of them, as onboarding and the bills sync leave it.

    with running_product(Path("cdk.out"), time_scale=1.0, emulator=emulator_limits(policy)) as p:
        set_payment_policy(p, policy)
        smb = ready_smb(p, [Decimal("100.00")])
        smb.pay(smb.bills[0], "pay-1", "100.00")
        view = smb.wait_for_payment(smb.bills[0], "pay-1")

The company record and the copy of the payables are written the way the product's own code
writes them (its repositories, the Codat adapter reading the emulator); nothing else is faked.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from billpay.bills.repository import DynamoPayablesRepository
from billpay.codat.client import CodatClient
from billpay.codat.throttle import DynamoThrottleStore
from billpay.payments.models import PaymentPolicy, execution_name
from codat_emulator.store import BankAccount, Bill, BillLine, CompanyInfo, DataSet, Supplier
from localcloud.payables import OUTPUT_COMPANIES_TABLE, record_ready
from localcloud.product import ProductCloud, set_function_environment

# Output ids and variable names of the stacks (infra/constants.py).
OUTPUT_PAYABLES_TABLE = "PayablesTableName"
OUTPUT_PAYMENT_STATE_MACHINE_ARN = "PaymentStateMachineArn"
ENV_PAYMENT_POLICY = "PAYMENT_POLICY"


def emulator_limits(policy: PaymentPolicy) -> dict[str, Any]:
    """Emulator settings that keep Idempotency-Keys as long as `policy` says Codat does."""
    return {"limits": {"idempotency_ttl_seconds": policy.idempotency_window_seconds}}


def set_payment_policy(product: ProductCloud, policy: PaymentPolicy) -> None:
    """What `-c 'config={"payments": ...}'` sets at synth, set on the deployed functions."""
    set_function_environment(product.cloud, {ENV_PAYMENT_POLICY: policy.to_env()})


@dataclass
class Smb:
    product: ProductCloud
    company_id: str
    codat_company_id: str
    connection_id: str
    bills: list[str]
    account_id: str
    archived_account_id: str
    usd_account_id: str

    # --- the product's API ----------------------------------------------------------------------

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.product.cloud.api_url, timeout=60)

    def pay(
        self, bill_id: str, payment_id: str, amount: str | Decimal, **body: Any
    ) -> httpx.Response:
        payload = {
            "paymentId": payment_id,
            "amount": str(amount),
            "date": "2026-11-25",
            "accountId": self.account_id,
            **body,
        }
        with self.http() as http:
            return http.post(f"/companies/{self.company_id}/bills/{bill_id}/payments", json=payload)

    def payment(self, bill_id: str, payment_id: str) -> httpx.Response:
        with self.http() as http:
            return http.get(f"/companies/{self.company_id}/bills/{bill_id}/payments/{payment_id}")

    def wait_for_payment(
        self, bill_id: str, payment_id: str, timeout: float = 120
    ) -> dict[str, Any]:
        """The payment once its workflow has ended (succeeded, or stopped for review)."""
        execution = self.product.cloud.wait_for_execution(
            self.execution_arn(payment_id), timeout=timeout
        )
        view: dict[str, Any] = self.payment(bill_id, payment_id).json()
        view["executionStatus"] = execution["status"]
        return view

    def execution_arn(self, payment_id: str) -> str:
        machine = self.product.cloud.output(OUTPUT_PAYMENT_STATE_MACHINE_ARN)
        prefix, _, name = machine.rpartition(":stateMachine:")
        return f"{prefix}:execution:{name}:{execution_name(self.company_id, payment_id)}"

    def executions_of(self, payment_id: str) -> int:
        """How many executions the payment's workflow has (its name allows one)."""
        sfn = self.product.cloud.client("stepfunctions")
        machine = self.product.cloud.output(OUTPUT_PAYMENT_STATE_MACHINE_ARN)
        name = execution_name(self.company_id, payment_id)
        listed = sfn.list_executions(stateMachineArn=machine)["executions"]
        return sum(1 for execution in listed if execution["name"] == name)

    def history(self, payment_id: str) -> list[dict[str, Any]]:
        return self.product.cloud.history(self.execution_arn(payment_id))

    # --- what Codat (the emulator) and the product's copy hold ----------------------------------

    def codat_payments(self, bill_id: str | None = None) -> list[dict[str, Any]]:
        """Payments the accounting platform holds (not a Codat endpoint: the emulator's own view)."""
        store = self.product.emulator.store
        return store.list_payments(self.codat_company_id, self.connection_id, bill_id)

    def codat_bill(self, bill_id: str) -> dict[str, Any]:
        with self.product.emulator.http() as http:
            answer = http.get(
                f"/companies/{self.codat_company_id}/connections/{self.connection_id}"
                "/payables/bills",
                params={"query": f'status!=Unknown&&id="{bill_id}"'},
            )
        (bill,) = answer.json()["results"]
        return dict(bill)

    def pay_outside(self, bill_id: str, amount: str) -> None:
        """A payment made in the accounting platform, not through Codat (the emulator's control)."""
        with self.product.emulator.http() as http:
            http.post(
                f"/_emulator/companies/{self.codat_company_id}/connections/{self.connection_id}"
                f"/bills/{bill_id}/pay",
                json={"amount": amount},
            ).raise_for_status()

    def copy(self) -> DynamoPayablesRepository:
        cloud = self.product.cloud
        return DynamoPayablesRepository(
            cloud.client("dynamodb"), cloud.output(OUTPUT_PAYABLES_TABLE)
        )

    def fault(self, kind: str, **rule: Any) -> None:
        """A fault on the next payment requests (see docs/emulator-api.md)."""
        self.product.emulator.faults.add_rule(
            kind=kind,
            route="/companies/*/connections/*/payables/bills/*/payment",
            method="POST",
            **rule,
        )


def ready_smb(product: ProductCloud, amounts: Sequence[Decimal], currency: str = "GBP") -> Smb:
    """A new SMB: Linked in the emulator with one open bill per amount and three accounts to pay
    from (active, archived, and active in USD), READY in the product, its copy of the payables
    read from the emulator through the product's Codat adapter."""
    emulator = product.emulator
    store = emulator.store
    company = store.create_company(f"Payer {secrets.token_hex(3)}", emulator.base_url)
    connection = store.create_connection(company["id"], "gbol", emulator.base_url)
    store.set_connection_status(company["id"], connection["id"], "Linked")
    ids = [str(uuid.uuid4()) for _ in range(5 + len(amounts))]
    supplier_id, account_id, archived_id, usd_id, bill_ids = ids[0], ids[1], ids[2], ids[3], ids[5:]
    modified = datetime.now(UTC) - timedelta(hours=1)
    store.load_dataset(
        company["id"],
        connection["id"],
        DataSet(
            suppliers=[
                Supplier(id=supplier_id, supplier_name="Paper Ltd", default_currency=currency)
            ],
            bank_accounts=[
                BankAccount(account_id, "Current", "Debit", "12345678", currency),
                BankAccount(archived_id, "Old", "Debit", "87654321", currency, "Archived"),
                BankAccount(usd_id, "Dollars", "Debit", "55555555", "USD"),
            ],
            bills=[
                Bill(
                    id=bill_id,
                    supplier_id=supplier_id,
                    issue_date="2026-11-01",
                    due_date="2026-12-01",
                    currency=currency,
                    status="Open",
                    total_amount=amount,
                    amount_due=amount,
                    reference=f"INV-{n:04d}",
                    line_items=[BillLine(description="Paper", unit_amount=amount)],
                    source_modified_date=modified,
                )
                for n, (bill_id, amount) in enumerate(zip(bill_ids, amounts, strict=True))
            ],
            company_info=CompanyInfo(company["name"], currency),
        ),
    )
    smb = Smb(
        product=product,
        company_id=f"smb-{secrets.token_hex(4)}",
        codat_company_id=company["id"],
        connection_id=connection["id"],
        bills=bill_ids,
        account_id=account_id,
        archived_account_id=archived_id,
        usd_account_id=usd_id,
    )
    record_ready(
        product,
        smb.company_id,
        smb.codat_company_id,
        smb.connection_id,
        platform_key="gbol",
        name="Payer Ltd",
    )
    _copy_payables(product, smb)
    return smb


def _copy_payables(product: ProductCloud, smb: Smb) -> None:
    """What the bills sync stores: every bill and the accounts, read through the Codat adapter."""
    cloud = product.cloud
    throttle = DynamoThrottleStore(cloud.client("dynamodb"), cloud.output(OUTPUT_COMPANIES_TABLE))
    codat = CodatClient(product.emulator.sdk(), throttle)
    copy = smb.copy()
    bills = codat.list_bills(smb.codat_company_id, smb.connection_id, "status!=Unknown", None)
    copy.save_newer(smb.company_id, bills.records)
    accounts = codat.list_payment_accounts(smb.codat_company_id, smb.connection_id, None)
    copy.replace_payment_accounts(smb.company_id, accounts.records, datetime.now(UTC))


@contextlib.contextmanager
def paid_record_lost_once() -> Iterator[list[str]]:
    """The first write of a PAID payment record with Codat's payment id fails: the Submit
    invocation dies after Codat answered and before the answer is recorded (moto in-process
    refuses the DynamoDB write). Yields the ids of the payments it happened to."""
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.put_item
    lost: list[str] = []

    def put_item(
        self: Any, table_name: str, item_attrs: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        paid = item_attrs.get("status", {}).get("S") == "PAID"
        if paid and "codatPaymentId" in item_attrs and not lost:
            lost.append(item_attrs["paymentId"]["S"])
            raise MockValidationException("injected: the Lambda died before recording")
        return original(self, table_name, item_attrs, *args, **kwargs)

    DynamoDBBackend.put_item = put_item  # type: ignore[method-assign]
    try:
        yield lost
    finally:
        DynamoDBBackend.put_item = original  # type: ignore[method-assign]


def wait_until(predicate: Any, timeout: float = 60, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not hold in time")
        time.sleep(every)
