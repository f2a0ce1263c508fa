"""`CodatPayables` over the one Codat client (billpay.codat.client): fresh bills and accounts, and
the payment itself. Imports Codat's SDK: only the workflow steps that call Codat import this.

Codat's synchronous API has no endpoint that reads one bill, and its bill listing filters on status
and sourceModifiedDate only. A bill's sourceModifiedDate only moves forward, so listing the bills
modified since a copy of the bill was taken (every status) finds it on the first page or few.
"""

from __future__ import annotations

from datetime import datetime

from billpay.bills.models import BillRecord, Connection, PaymentAccount
from billpay.bills.sync import bills_query
from billpay.codat.client import CodatClient
from billpay.codat.errors import CodatUnexpectedResponseError
from billpay.payments.ports import CreatedPayment, PaymentBody

# Listing more pages than this to find one bill means the narrowing failed: stop and say so.
MAX_BILL_PAGES = 50
MAX_ACCOUNT_PAGES = 20


class CodatPayablesAdapter:
    def __init__(self, client: CodatClient) -> None:
        self._client = client

    def fresh_bill(
        self, connection: Connection, bill_id: str, modified_since: datetime | None
    ) -> BillRecord | None:
        query = bills_query(modified_since)
        token: str | None = None
        for _ in range(MAX_BILL_PAGES):
            page = self._client.list_bills(
                connection.codat_company_id, connection.connection_id, query, token
            )
            found = next((bill for bill in page.records if bill.bill_id == bill_id), None)
            token = page.next_token
            if found is not None or token is None:
                return found
        raise CodatUnexpectedResponseError(
            f"bill {bill_id!r} is not in the first {MAX_BILL_PAGES} pages of bills modified "
            f"since {modified_since}"
        )

    def payment_accounts(self, connection: Connection) -> list[PaymentAccount]:
        accounts: list[PaymentAccount] = []
        token: str | None = None
        for _ in range(MAX_ACCOUNT_PAGES):
            page = self._client.list_payment_accounts(
                connection.codat_company_id, connection.connection_id, token
            )
            accounts.extend(page.records)
            token = page.next_token
            if token is None:
                return accounts
        raise CodatUnexpectedResponseError(
            f"more than {MAX_ACCOUNT_PAGES} pages of payment accounts"
        )

    def pay_bill(
        self, connection: Connection, bill_id: str, body: PaymentBody, idempotency_key: str
    ) -> CreatedPayment:
        payment_id = self._client.create_bill_payment(
            connection.codat_company_id,
            connection.connection_id,
            bill_id,
            amount=body.amount,
            day=body.date,
            account_id=body.account_id,
            reference=body.reference,
            currency_rate=body.currency_rate,
            key=idempotency_key,
        )
        return CreatedPayment(id=payment_id)
