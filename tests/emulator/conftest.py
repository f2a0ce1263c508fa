"""Fixtures for the emulator tier: one emulator per session (tests isolate by company), plus
helpers that build a Linked company with a small data set of our own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from codat_emulator.store import (
    Account,
    BankAccount,
    Bill,
    BillLine,
    CompanyInfo,
    DataSet,
    Supplier,
    TaxRate,
)
from codat_emulator.testing import RunningEmulator, running_emulator


@pytest.fixture(scope="session")
def emulator() -> Iterator[RunningEmulator]:
    with running_emulator() as emu:
        yield emu


@pytest.fixture(scope="session")
def sdk(emulator: RunningEmulator):
    return emulator.sdk()


@dataclass
class LinkedCompany:
    company_id: str
    connection_id: str
    supplier_id: str
    archived_supplier_id: str
    bank_account_id: str
    archived_bank_account_id: str
    usd_bank_account_id: str
    account_id: str
    tax_rate_id: str
    open_bill_id: str
    paid_bill_id: str
    void_bill_id: str
    draft_bill_id: str

    @property
    def ids(self) -> dict[str, str]:
        return {"company_id": self.company_id, "connection_id": self.connection_id}


def _bill(bill_id: str, supplier_id: str, status: str, total: str, due: str) -> Bill:
    return Bill(
        id=bill_id,
        supplier_id=supplier_id,
        issue_date="2024-01-10",
        due_date="2024-02-10",
        currency="GBP",
        status=status,
        total_amount=Decimal(total),
        amount_due=Decimal(due),
        reference=f"INV-{bill_id[:6]}",
        line_items=[BillLine(description="Services", unit_amount=Decimal(total))],
    )


def make_linked_company(emu: RunningEmulator, platform_key: str = "gbol") -> LinkedCompany:
    """A company with a Linked connection holding a small data set (directly through the store:
    this is what the accounting platform already holds)."""
    store = emu.store
    company = store.create_company(f"Test SMB {uuid.uuid4().hex[:6]}", emu.base_url)
    connection = store.create_connection(company["id"], platform_key, emu.base_url)
    store.set_connection_status(company["id"], connection["id"], "Linked")
    ids = {name: str(uuid.uuid4()) for name in LinkedCompany.__dataclass_fields__}
    dataset = DataSet(
        suppliers=[
            Supplier(
                id=ids["supplier_id"], supplier_name="Office Supplies Ltd", default_currency="GBP"
            ),
            Supplier(id=ids["archived_supplier_id"], supplier_name="Gone Ltd", status="Archived"),
        ],
        bank_accounts=[
            BankAccount(ids["bank_account_id"], "Current", "Debit", "12345678", "GBP"),
            BankAccount(
                ids["archived_bank_account_id"], "Old", "Debit", "87654321", "GBP", "Archived"
            ),
            BankAccount(ids["usd_bank_account_id"], "Dollars", "Debit", "55555555", "USD"),
        ],
        accounts=[Account(ids["account_id"], "Office costs", "7500")],
        tax_rates=[TaxRate(ids["tax_rate_id"], "Standard 20%", "20", Decimal(20), Decimal(20))],
        bills=[
            _bill(ids["open_bill_id"], ids["supplier_id"], "Open", "120.00", "120.00"),
            _bill(ids["paid_bill_id"], ids["supplier_id"], "Paid", "50.00", "0.00"),
            _bill(ids["void_bill_id"], ids["supplier_id"], "Void", "70.00", "0.00"),
            _bill(ids["draft_bill_id"], ids["supplier_id"], "Draft", "30.00", "30.00"),
        ],
        company_info=CompanyInfo(company["name"], "GBP"),
    )
    store.load_dataset(company["id"], connection["id"], dataset)
    ids.update(company_id=company["id"], connection_id=connection["id"])
    return LinkedCompany(**ids)


@pytest.fixture
def linked(emulator: RunningEmulator) -> LinkedCompany:
    return make_linked_company(emulator)


def bill_prototype(supplier_id: str, amount: str = "100.00", **extra):
    return {
        "supplier_ref": {"id": supplier_id},
        "issue_date": "2024-03-01",
        "due_date": "2024-03-31",
        "currency": "GBP",
        "status": "Open",
        "line_items": [
            {"description": "Paper", "unit_amount": Decimal(amount), "quantity": Decimal(1)}
        ],
        **extra,
    }
