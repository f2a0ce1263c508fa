"""A deterministic, realistic accounting data set for one SMB: what its platform holds at Link time.

``generate_dataset(DatasetSpec(...))`` is pure: the same spec gives the same records (ids included),
so a demo or a failing test can be replayed. Money is consistent by construction: a bill's total is
the sum of its lines, ``amountDue`` is the total less what has been paid (0 for Paid and Void).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from codat_emulator.store import (
    PLATFORMS,
    Account,
    Address,
    BankAccount,
    Bill,
    BillLine,
    CompanyInfo,
    DataSet,
    Supplier,
    TaxRate,
    money,
)

MAX_BILLS = 100_000
DEFAULT_BILLS = 60
CURRENCIES = ("GBP", "USD", "EUR")

# Each status present in every data set of at least len(_STATUS_WEIGHTS) bills; the weights give
# a realistic spread beyond that (mostly settled history, a live payables queue).
_STATUS_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("Open", 40),
    ("PartiallyPaid", 10),
    ("Paid", 35),
    ("Void", 7),
    ("Draft", 8),
)
_STATUS_NAMES = tuple(s for s, _ in _STATUS_WEIGHTS)
_STATUS_CUMULATIVE = tuple(
    sum(w for _, w in _STATUS_WEIGHTS[: i + 1]) for i in range(len(_STATUS_WEIGHTS))
)

# Xero and FreeAgent books are mostly British, QuickBooks and the rest mostly American: the base
# currency follows the platform so demos look plausible.
_PLATFORM_BASE_CURRENCY = {
    "gbol": "GBP",
    "fbrh": "GBP",
    "qhyg": "USD",
    "akxx": "USD",
    "knfz": "USD",
    "rwuv": "EUR",
}
# Rough rates to the base currency; only used to fill currencyRate on foreign bills.
_RATES_TO_GBP = {"GBP": Decimal("1"), "USD": Decimal("0.79"), "EUR": Decimal("0.85")}

_NAME_FIRST = (
    "Acme", "Northwind", "Bluebell", "Harbour", "Summit", "Copper", "Riverside", "Oakridge",
    "Kestrel", "Lumen", "Granite", "Meridian", "Pioneer", "Willow", "Beacon", "Cobalt", "Fenwick",
    "Juniper", "Orchard", "Sterling", "Thistle", "Vantage", "Ashford", "Brightwater",
)  # fmt: skip
_NAME_SECOND = (
    "Office Supplies", "Logistics", "Catering", "Cleaning", "Software", "Print", "Energy",
    "Telecom", "Consulting", "Hardware", "Freight", "Marketing", "Legal", "Facilities", "Security",
    "Packaging", "Couriers", "Insurance", "Recruitment", "Design",
)  # fmt: skip
_NAME_SUFFIX = {
    "GBP": ("Ltd", "LLP", "plc"),
    "USD": ("Inc", "LLC", "Corp"),
    "EUR": ("GmbH", "BV", "SA"),
}
_CONTACTS = (
    "Alex Morgan", "Sam Patel", "Jordan Lee", "Priya Shah", "Chris Evans", "Maria Garcia",
    "Tom Becker", "Aisha Khan", "Lucas Martin", "Emma Wilson", "Noah Fischer", "Zoe Dubois",
)  # fmt: skip
_CITIES = {
    "GBP": (("London", "EC1A 1BB"), ("Manchester", "M1 1AE"), ("Leeds", "LS1 4DY")),
    "USD": (("New York", "10001"), ("Austin", "73301"), ("Denver", "80202")),
    "EUR": (("Berlin", "10115"), ("Amsterdam", "1011"), ("Paris", "75001")),
}
_COUNTRY = {"GBP": "United Kingdom", "USD": "United States", "EUR": "Germany"}

# (nominal code, name, type): the expense side of a chart of accounts that bill lines map to.
_CHART = (
    ("400", "Advertising & Marketing", "Expense"),
    ("404", "Bank Fees", "Expense"),
    ("408", "Cleaning", "Expense"),
    ("412", "Consulting & Accounting", "Expense"),
    ("420", "Entertainment", "Expense"),
    ("429", "General Expenses", "Expense"),
    ("433", "Insurance", "Expense"),
    ("445", "Light, Power, Heating", "Expense"),
    ("461", "Printing & Stationery", "Expense"),
    ("469", "Rent", "Expense"),
    ("473", "Repairs and Maintenance", "Expense"),
    ("485", "Subscriptions", "Expense"),
    ("489", "Telephone & Internet", "Expense"),
    ("493", "Travel - National", "Expense"),
    ("300", "Purchases", "Expense"),
    ("800", "Accounts Payable", "Liability"),
)
_LINE_DESCRIPTIONS = (
    "Monthly service fee", "Consumables", "Delivery charge", "Support hours", "Licences",
    "Maintenance visit", "Equipment hire", "Professional services", "Stationery order",
    "Utilities", "Travel expenses", "Subscription renewal",
)  # fmt: skip
# (name, code, rate %) per base currency.
_TAX_RATES = {
    "GBP": (("20% (VAT on Expenses)", "INPUT2", "20"), ("5% (VAT on Expenses)", "INPUT5", "5"),
            ("Zero Rated Expenses", "ZERO", "0"), ("No VAT", "NONE", "0")),
    "USD": (("Sales Tax", "TAX", "8.25"), ("Tax Exempt", "NONE", "0")),
    "EUR": (("19% Vorsteuer", "VST19", "19"), ("7% Vorsteuer", "VST7", "7"),
            ("Steuerfrei", "NONE", "0")),
}  # fmt: skip


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate. ``as_of`` anchors every date (due dates, modified dates) so the same spec
    is the same data on any day; Link passes today so demos show overdue and upcoming bills."""

    seed: int | str
    company_id: str
    platform_key: str
    company_name: str = "Demo SMB"
    bills: int = DEFAULT_BILLS
    as_of: date = field(default_factory=lambda: date(2026, 1, 1))

    def __post_init__(self) -> None:
        if not 0 <= self.bills <= MAX_BILLS:
            raise ValueError(f"bills must be between 0 and {MAX_BILLS}, got {self.bills}")
        if self.platform_key not in PLATFORMS:
            raise ValueError(f"unknown platform key {self.platform_key!r}")


def _rng_for(spec: DatasetSpec, purpose: str) -> random.Random:
    # A string seed: Random hashes it with SHA-512, stable across processes (unlike hash()).
    # Not for security: reproducible test data is the point.
    return random.Random(f"{spec.seed}|{spec.company_id}|{spec.platform_key}|{purpose}")  # noqa: S311


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def base_currency_for(platform_key: str) -> str:
    return _PLATFORM_BASE_CURRENCY.get(platform_key, "GBP")


def supplier_count_for(bills: int) -> int:
    return max(6, min(2_000, bills // 10))


def _modified(rng: random.Random, as_of: date, max_days: int) -> datetime:
    moment = datetime.combine(as_of, time(9, 0), tzinfo=UTC)
    return moment - timedelta(days=rng.randint(0, max_days), minutes=rng.randint(0, 600))


def generate_suppliers(spec: DatasetSpec, base: str) -> list[Supplier]:
    rng = _rng_for(spec, "suppliers")
    count = supplier_count_for(spec.bills)
    suppliers: list[Supplier] = []
    for index in range(count):
        currency = base if rng.random() < 0.7 else rng.choice(CURRENCIES)
        name = (
            f"{rng.choice(_NAME_FIRST)} {rng.choice(_NAME_SECOND)} "
            f"{rng.choice(_NAME_SUFFIX[currency])}"
        )
        if index >= len(_NAME_FIRST):  # names repeat in big sets; keep them distinguishable
            name = f"{name} ({index + 1})"
        city, postcode = rng.choice(_CITIES[currency])
        contact = rng.choice(_CONTACTS)
        # About one in twelve suppliers is archived, never the first (bills need active ones).
        archived = index > 0 and rng.random() < 0.08
        suppliers.append(
            Supplier(
                id=_uuid(rng),
                supplier_name=name,
                status="Archived" if archived else "Active",
                contact_name=contact,
                email_address=f"{contact.split()[0].lower()}@supplier{index + 1}.example",
                phone=f"+44 20 7946 {rng.randint(0, 9999):04d}",
                addresses=[
                    Address(
                        type="Billing",
                        line1=f"{rng.randint(1, 250)} {rng.choice(_NAME_FIRST)} Street",
                        city=city,
                        country=_COUNTRY[currency],
                        postal_code=postcode,
                    )
                ],
                default_currency=currency,
                source_modified_date=_modified(rng, spec.as_of, 400),
            )
        )
    return suppliers


def generate_accounts(spec: DatasetSpec, base: str) -> list[Account]:
    rng = _rng_for(spec, "accounts")
    return [
        Account(id=_uuid(rng), name=name, nominal_code=code, type=kind, currency=base)
        for code, name, kind in _CHART
    ]


def generate_tax_rates(spec: DatasetSpec, base: str) -> list[TaxRate]:
    rng = _rng_for(spec, "taxRates")
    return [
        TaxRate(
            id=_uuid(rng),
            name=name,
            code=code,
            effective_tax_rate=Decimal(rate),
            total_tax_rate=Decimal(rate),
        )
        for name, code, rate in _TAX_RATES[base]
    ]


def generate_bank_accounts(spec: DatasetSpec, base: str) -> list[BankAccount]:
    """One active account per currency (so every bill can be paid) and one archived account."""
    rng = _rng_for(spec, "bankAccounts")
    accounts = []
    for offset, currency in enumerate(sorted(CURRENCIES, key=lambda c: c != base)):
        accounts.append(
            BankAccount(
                id=_uuid(rng),
                name=f"Business Current Account {currency}",
                account_type="Debit",
                account_number=f"{rng.randint(10_000_000, 99_999_999)}",
                sort_code=f"{rng.randint(10, 99)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}",
                currency=currency,
                nominal_code=str(90 + offset),
                source_modified_date=_modified(rng, spec.as_of, 700),
            )
        )
    accounts.append(
        BankAccount(
            id=_uuid(rng),
            name="Old Savings Account (closed)",
            account_type="Debit",
            account_number=f"{rng.randint(10_000_000, 99_999_999)}",
            currency=base,
            status="Archived",
            nominal_code="99",
            source_modified_date=_modified(rng, spec.as_of, 700),
        )
    )
    return accounts


def _status_for(index: int, rng: random.Random) -> str:
    if index < len(_STATUS_NAMES):
        return _STATUS_NAMES[index]  # every status appears in any set big enough to hold them
    pick = rng.random() * _STATUS_CUMULATIVE[-1]
    for name, bound in zip(_STATUS_NAMES, _STATUS_CUMULATIVE, strict=True):
        if pick < bound:
            return name
    return _STATUS_NAMES[-1]


def generate_bills(
    spec: DatasetSpec,
    base: str,
    suppliers: list[Supplier],
    accounts: list[Account],
    tax_rates: list[TaxRate],
    count: int,
    purpose: str = "bills",
    first_number: int = 1,
    status: str | None = None,
) -> list[Bill]:
    """``count`` bills from ``suppliers``; ``purpose`` and ``first_number`` let callers generate
    further, distinct batches later (new bills arriving in the platform)."""
    rng = _rng_for(spec, purpose)
    active = [s for s in suppliers if s.status == "Active"]
    archived = [s for s in suppliers if s.status != "Active"]
    expense_accounts = [a for a in accounts if a.type == "Expense"] or accounts
    bills: list[Bill] = []
    for index in range(count):
        bill_status = status or _status_for(index, rng)
        # Archived suppliers only carry settled history.
        if archived and bill_status in ("Paid", "Void") and rng.random() < 0.15:
            supplier = rng.choice(archived)
        else:
            supplier = rng.choice(active) if active else rng.choice(suppliers)
        currency = supplier.default_currency or base
        issue = spec.as_of - timedelta(
            days=rng.randint(0, 120) if bill_status != "Paid" else rng.randint(30, 400)
        )
        due = issue + timedelta(days=rng.choice((7, 14, 30, 30, 30, 45, 60)))
        lines: list[BillLine] = []
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            unit = money(Decimal(rng.randint(500, 250_000)) / 100)
            quantity = Decimal(rng.choice((1, 1, 1, 2, 3, 5, 10)))
            tax_rate = rng.choice(tax_rates) if tax_rates else None
            rate = tax_rate.effective_tax_rate if tax_rate else Decimal(0)
            tax = money(unit * quantity * rate / 100)
            lines.append(
                BillLine(
                    description=rng.choice(_LINE_DESCRIPTIONS),
                    unit_amount=unit,
                    quantity=quantity,
                    tax_amount=tax,
                    account_id=rng.choice(expense_accounts).id if expense_accounts else None,
                    tax_rate_id=tax_rate.id if tax_rate else None,
                )
            )
        total = money(sum((line.total for line in lines), Decimal(0)))
        if bill_status in ("Paid", "Void"):
            amount_due = Decimal("0.00")
        elif bill_status == "PartiallyPaid":
            # At least a cent paid and a cent left, whatever the total.
            paid_cents = rng.randint(1, max(1, int(total * 100) - 1))
            amount_due = money(total - Decimal(paid_cents) / 100)
        else:
            amount_due = total
        rate_to_base = None
        if currency != base:
            rate_to_base = (_RATES_TO_GBP[currency] / _RATES_TO_GBP[base]).quantize(
                Decimal("0.0001")
            )
        bills.append(
            Bill(
                id=_uuid(rng),
                supplier_id=supplier.id,
                supplier_name=supplier.supplier_name,
                issue_date=issue.isoformat(),
                due_date=due.isoformat(),
                currency=currency,
                currency_rate=rate_to_base,
                status=bill_status,
                total_amount=total,
                amount_due=amount_due,
                reference=f"INV-{first_number + index:06d}",
                line_items=lines,
                source_modified_date=_modified(rng, spec.as_of, 90),
            )
        )
    return bills


def generate_dataset(spec: DatasetSpec) -> DataSet:
    base = base_currency_for(spec.platform_key)
    suppliers = generate_suppliers(spec, base)
    accounts = generate_accounts(spec, base)
    tax_rates = generate_tax_rates(spec, base)
    return DataSet(
        suppliers=suppliers,
        bills=generate_bills(spec, base, suppliers, accounts, tax_rates, spec.bills),
        bank_accounts=generate_bank_accounts(spec, base),
        accounts=accounts,
        tax_rates=tax_rates,
        company_info=CompanyInfo(company_name=spec.company_name, base_currency=base),
    )
