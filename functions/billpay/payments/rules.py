"""Whether a payment may go to Codat: the same checks on the product's copy of the bill (when the
API accepts the payment) and on Codat's fresh copy (just before the first attempt).

Pure functions over the bill and the company's payment accounts; Decimal arithmetic only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from billpay.bills.models import AccountStatus, BillRecord, BillStatus, PaymentAccount
from billpay.core.money import currency_places
from billpay.payments.models import PaymentIntent, has_places

PAYABLE_BILL_STATUSES = frozenset({BillStatus.OPEN, BillStatus.PARTIALLY_PAID})


@dataclass(frozen=True)
class Problem:
    """Why a payment cannot go, naming the request field at fault."""

    field: str
    message: str

    def as_detail(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def payment_problems(
    intent: PaymentIntent, bill: BillRecord, accounts: Sequence[PaymentAccount]
) -> list[Problem]:
    """Everything wrong with paying `bill` this way; empty when the payment may go."""
    problems: list[Problem] = []
    if bill.status not in PAYABLE_BILL_STATUSES:
        problems.append(
            Problem(
                "billId",
                f"bill {bill.bill_id!r} is {bill.status}: only Open or PartiallyPaid bills can be paid",
            )
        )
    amount, currency = intent.amount, bill.currency
    if not has_places(amount, currency):
        problems.append(
            Problem(
                "amount",
                f"amount {amount} has more decimal places than {currency} allows "
                f"({currency_places(currency)})",
            )
        )
    elif amount > bill.amount_due:
        problems.append(
            Problem(
                "amount",
                f"amount {amount} is more than the {bill.amount_due} {currency} due on the bill",
            )
        )
    problems.extend(_account_problems(intent, bill, accounts))
    return problems


def _account_problems(
    intent: PaymentIntent, bill: BillRecord, accounts: Sequence[PaymentAccount]
) -> list[Problem]:
    account = next((a for a in accounts if a.account_id == intent.account_id), None)
    if account is None:
        return [
            Problem(
                "accountId",
                f"account {intent.account_id!r} is not one this company can pay bills from",
            )
        ]
    if account.status is not AccountStatus.ACTIVE:
        return [Problem("accountId", f"account {intent.account_id!r} is {account.status}")]
    # Codat pays in the bill's currency or the account's; another currency needs a rate.
    if account.currency and account.currency != bill.currency and intent.currency_rate is None:
        return [
            Problem(
                "currencyRate",
                f"account {intent.account_id!r} is in {account.currency} and the bill in "
                f"{bill.currency}: a currencyRate is needed",
            )
        ]
    return []
