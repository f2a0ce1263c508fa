"""Payables data: each connection's ledger (suppliers, bills, attachments, bank accounts,
payments, mapping options), changed through the API or by the accounting platform itself.

Writes through the API need a Linked connection; listings need a first read (Codat's 409
before it). Changes the platform makes on its own (``load_dataset``, ``put_*``,
``record_external_payment``) skip the Linked check."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from codat_emulator.store.companies import CompaniesStore
from codat_emulator.store.core import (
    Emit,
    JsonDict,
    NotFound,
    NotLinked,
    NotYetRead,
    Page,
    ValidationFailed,
    ValidationItem,
    copy_json,
    money,
    new_id,
)
from codat_emulator.store.ledger import (
    BILL_STATUSES,
    PAYABLE_BILL_STATUSES,
    Attachment,
    BankAccount,
    Bill,
    CompanyInfo,
    DataSet,
    Ledger,
    Payment,
    Supplier,
    render_bill,
    take_page,
)

# Files no accounting platform takes as a bill attachment. Codat documents no per-platform file
# rules for Bill Pay; this is the emulator's stand-in, so a refused upload can be tested.
REFUSED_ATTACHMENT_EXTENSIONS = frozenset(
    {".exe", ".dll", ".bat", ".cmd", ".com", ".msi", ".scr", ".js", ".vbs", ".ps1", ".sh", ".jar"}
)


def _check_attachment(name: str, content: bytes) -> None:
    errors: list[ValidationItem] = []
    if not content:
        errors.append(ValidationItem("The file is empty.", "file"))
    extension = name[name.rfind(".") :].lower() if "." in name else ""
    if extension in REFUSED_ATTACHMENT_EXTENSIONS:
        errors.append(
            ValidationItem(f"The accounting platform does not accept '{extension}' files.", "file")
        )
    if errors:
        raise ValidationFailed(errors)


class PayablesStore(CompaniesStore):
    """One ledger per connection, created and dropped with it."""

    def _init_payables(self) -> None:
        self._ledgers: dict[tuple[str, str], Ledger] = {}
        self._last_modified: datetime | None = None

    def _modified_now(self) -> datetime:
        """The ``sourceModifiedDate`` of a change: now, but later than any the store holds, at
        the millisecond Codat's dates carry, so a "modified since the last one I saw" sync never
        misses a change (two in one millisecond, or after a seeded record dated later today)."""
        now = self.clock()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_modified is not None and now <= self._last_modified:
            now = self._last_modified + timedelta(milliseconds=1)
        self._last_modified = now
        return now

    def _saw_modified(self, moment: datetime) -> None:
        if self._last_modified is None or moment > self._last_modified:
            self._last_modified = moment

    def _on_connection_created(self, company_id: str, connection_id: str) -> None:
        super()._on_connection_created(company_id, connection_id)
        self._ledgers[(company_id, connection_id)] = Ledger()

    def _on_connection_linked(self, company_id: str, connection_id: str) -> None:
        super()._on_connection_linked(company_id, connection_id)
        self._ledgers[(company_id, connection_id)].read_once = True

    def _on_connection_deleted(self, company_id: str, connection_id: str) -> None:
        super()._on_connection_deleted(company_id, connection_id)
        self._ledgers.pop((company_id, connection_id), None)

    def _ledger(self, company_id: str, connection_id: str) -> Ledger:
        self._connection(company_id, connection_id)
        return self._ledgers[(company_id, connection_id)]

    def _read_ledger(self, company_id: str, connection_id: str) -> Ledger:
        ledger = self._ledger(company_id, connection_id)
        if not ledger.read_once:
            raise NotYetRead()
        return ledger

    def _writable_ledger(self, company_id: str, connection_id: str) -> Ledger:
        connection = self._connection(company_id, connection_id)
        if connection.status != "Linked":
            raise NotLinked(
                f"Connection '{connection_id}' is {connection.status};"
                " writes need a Linked connection."
            )
        return self._ledgers[(company_id, connection_id)]

    # -- bulk data and changes outside the API --------------------------------------------------

    def load_dataset(self, company_id: str, connection_id: str, dataset: DataSet) -> None:
        """Load (or overwrite by id) a platform's records into one connection in one locked step.

        Emits no per-record events: a data set is what the platform already holds, and the read
        that surfaces it is announced by the caller (a ``read.completed`` webhook).
        """
        with self._change():
            ledger = self._ledger(company_id, connection_id)
            ledger.read_once = True
            for supplier in dataset.suppliers:
                self._put_supplier(ledger, supplier)
            for account in dataset.accounts:
                ledger.accounts[account.id] = account
            for tax_rate in dataset.tax_rates:
                ledger.tax_rates[tax_rate.id] = tax_rate
            for bank_account in dataset.bank_accounts:
                ledger.bank_accounts[bank_account.id] = bank_account
            for bill in dataset.bills:
                self._put_bill(ledger, bill)
            if dataset.company_info is not None:
                ledger.company_info = dataset.company_info

    def put_bill(self, company_id: str, connection_id: str, bill: Bill) -> JsonDict:
        """Insert or overwrite a bill as the accounting platform would (no Linked check)."""
        with self._change() as emit:
            ledger = self._ledger(company_id, connection_id)
            existed = bill.id in ledger.bills
            self._put_bill(ledger, bill)
            body = bill.to_json()
            emit(
                "bill.updated" if existed else "bill.created",
                company_id,
                {"bill": body, "connection_id": connection_id},
            )
        return body

    def put_supplier(self, company_id: str, connection_id: str, supplier: Supplier) -> JsonDict:
        with self._change() as emit:
            ledger = self._ledger(company_id, connection_id)
            existed = supplier.id in ledger.suppliers
            self._put_supplier(ledger, supplier)
            body = supplier.to_json()
            emit(
                "supplier.updated" if existed else "supplier.created",
                company_id,
                {"supplier": body, "connection_id": connection_id},
            )
        return body

    def put_bank_account(
        self, company_id: str, connection_id: str, bank_account: BankAccount
    ) -> JsonDict:
        with self._change() as emit:
            ledger = self._ledger(company_id, connection_id)
            ledger.bank_accounts[bank_account.id] = bank_account
            body = bank_account.to_json()
            emit(
                "bank_account.created",
                company_id,
                {"bank_account": body, "connection_id": connection_id},
            )
        return body

    def record_external_payment(
        self,
        company_id: str,
        connection_id: str,
        bill_id: str,
        amount: Decimal | None = None,
        date: str | None = None,
    ) -> JsonDict:
        """A payment made in the accounting platform, outside the product: no Linked check, no
        bank account; ``amount=None`` pays the whole amount due."""
        with self._change() as emit:
            ledger = self._ledger(company_id, connection_id)
            bill = self._bill(ledger, bill_id)
            paid = money(amount) if amount is not None else bill.amount_due
            self._check_payable(bill, paid)
            payment = Payment(
                id=new_id(),
                bill_id=bill_id,
                amount=paid,
                date=date or self.clock().date().isoformat(),
                account_id="",
                external=True,
            )
            self._apply_payment(ledger, bill, payment, emit, company_id, connection_id)
        return bill.to_json()

    def _put_supplier(self, ledger: Ledger, supplier: Supplier) -> None:
        old = ledger.suppliers.get(supplier.id)
        if old is not None:
            ledger.supplier_order.remove(old.seq)
        supplier.seq = next(self._seq)
        if supplier.source_modified_date is None:
            supplier.source_modified_date = self._modified_now()
        else:
            self._saw_modified(supplier.source_modified_date)
        ledger.suppliers[supplier.id] = supplier
        ledger.supplier_order.add(supplier.seq, supplier.id)

    def _put_bill(self, ledger: Ledger, bill: Bill) -> None:
        if bill.status not in BILL_STATUSES:
            raise ValidationFailed(
                [ValidationItem(f"Unknown bill status '{bill.status}'.", "status")]
            )
        old = ledger.bills.get(bill.id)
        if old is not None:
            ledger.bill_order.remove(old.seq)
            ledger.bills_by_status[old.status].remove(old.seq)
        # A change moves the bill to the end of the order, so a continuation token taken before
        # the change still sees it once (the way "modified since" listings behave).
        bill.seq = next(self._seq)
        if bill.source_modified_date is None:
            bill.source_modified_date = self._modified_now()
        else:
            self._saw_modified(bill.source_modified_date)
        if bill.supplier_name is None:
            supplier = ledger.suppliers.get(bill.supplier_id)
            bill.supplier_name = supplier.supplier_name if supplier else None
        ledger.bills[bill.id] = bill
        render_bill(ledger, bill)
        ledger.bill_order.add(bill.seq, bill.id)
        ledger.bills_by_status[bill.status].add(bill.seq, bill.id)

    # -- suppliers ------------------------------------------------------------------------------

    def create_supplier(self, company_id: str, connection_id: str, supplier: Supplier) -> JsonDict:
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            supplier.id = supplier.id or new_id()
            supplier.source_modified_date = self._modified_now()
            self._put_supplier(ledger, supplier)
            body = supplier.to_json()
            emit("supplier.created", company_id, {"supplier": body, "connection_id": connection_id})
        return body

    def replace_supplier(
        self, company_id: str, connection_id: str, supplier_id: str, supplier: Supplier
    ) -> JsonDict:
        """Supplier update is a full replace: fields left out of the body are cleared."""
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            if supplier_id not in ledger.suppliers:
                raise NotFound("Supplier", supplier_id)
            supplier.id = supplier_id
            supplier.source_modified_date = self._modified_now()
            self._put_supplier(ledger, supplier)
            body = supplier.to_json()
            emit("supplier.updated", company_id, {"supplier": body, "connection_id": connection_id})
        return body

    def get_supplier(self, company_id: str, connection_id: str, supplier_id: str) -> JsonDict:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            supplier = ledger.suppliers.get(supplier_id)
            if supplier is None:
                raise NotFound("Supplier", supplier_id)
            return supplier.to_json()

    def list_suppliers(
        self,
        company_id: str,
        connection_id: str,
        after: int,
        limit: int,
        predicate: Callable[[JsonDict], bool] | None = None,
    ) -> Page[JsonDict]:
        with self._lock:
            ledger = self._read_ledger(company_id, connection_id)
            bodies = (
                (seq, ledger.suppliers[sid].to_json())
                for seq, sid in ledger.supplier_order.after(after)
            )
            return take_page(((seq, body, body) for seq, body in bodies), limit, predicate)

    # -- bills ----------------------------------------------------------------------------------

    def _bill(self, ledger: Ledger, bill_id: str) -> Bill:
        bill = ledger.bills.get(bill_id)
        if bill is None:
            raise NotFound("Bill", bill_id)
        return bill

    def get_bill(self, company_id: str, connection_id: str, bill_id: str) -> JsonDict:
        with self._lock:
            return self._bill(self._ledger(company_id, connection_id), bill_id).to_json()

    def list_bills(
        self,
        company_id: str,
        connection_id: str,
        after: int,
        limit: int,
        statuses: frozenset[str] | None,
        predicate: Callable[[JsonDict], bool] | None = None,
    ) -> Page[JsonDict]:
        """Bills in sequence order after ``after``; ``statuses`` narrows the scan to those indexes
        (the caller still passes the full ``predicate``)."""
        with self._lock:
            rows = (
                (seq, view, view)
                for seq, view, _ in self._bill_rows(company_id, connection_id, after, statuses)
            )
            page = take_page(rows, limit, predicate)
            return Page([copy_json(item) for item in page.items], page.next_after)

    def list_bills_json(
        self,
        company_id: str,
        connection_id: str,
        after: int,
        limit: int,
        statuses: frozenset[str] | None,
        predicate: Callable[[JsonDict], bool] | None = None,
    ) -> Page[bytes]:
        """As ``list_bills``, each bill as its JSON bytes (what the HTTP layer sends)."""
        with self._lock:
            rows = self._bill_rows(company_id, connection_id, after, statuses)
            return take_page(rows, limit, predicate)

    def _bill_rows(
        self, company_id: str, connection_id: str, after: int, statuses: frozenset[str] | None
    ) -> Iterator[tuple[int, JsonDict, bytes]]:
        ledger = self._read_ledger(company_id, connection_id)
        if statuses is None:
            candidates: Iterator[tuple[int, str]] = ledger.bill_order.after(after)
        else:
            candidates = heapq.merge(
                *(
                    ledger.bills_by_status[s].after(after)
                    for s in sorted(statuses)
                    if s in ledger.bills_by_status
                )
            )
        views = ledger.bill_views
        return ((seq, *views[bill_id]) for seq, bill_id in candidates)

    def count_bills(self, company_id: str, connection_id: str) -> dict[str, int]:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            return {status: len(index) for status, index in ledger.bills_by_status.items()}

    def _validate_bill_refs(self, ledger: Ledger, bill: Bill) -> None:
        errors: list[ValidationItem] = []
        supplier = ledger.suppliers.get(bill.supplier_id)
        if supplier is None:
            errors.append(
                ValidationItem(f"Supplier '{bill.supplier_id}' does not exist.", "supplierRef.id")
            )
        elif supplier.status == "Archived":
            errors.append(
                ValidationItem(f"Supplier '{bill.supplier_id}' is archived.", "supplierRef.id")
            )
        for index, line in enumerate(bill.line_items):
            if line.account_id is not None and line.account_id not in ledger.accounts:
                errors.append(
                    ValidationItem(
                        f"Account '{line.account_id}' does not exist.",
                        f"lineItems[{index}].accountRef.id",
                    )
                )
            if line.tax_rate_id is not None and line.tax_rate_id not in ledger.tax_rates:
                errors.append(
                    ValidationItem(
                        f"Tax rate '{line.tax_rate_id}' does not exist.",
                        f"lineItems[{index}].taxRateRef.id",
                    )
                )
        if bill.status not in ("Open", "Draft", "Void"):
            errors.append(
                ValidationItem(
                    f"A bill cannot be written with status '{bill.status}':"
                    " use Open, Draft or Void;"
                    " payments set PartiallyPaid and Paid.",
                    "status",
                )
            )
        if errors:
            raise ValidationFailed(errors)
        if supplier is not None:
            bill.supplier_name = supplier.supplier_name

    def create_bill(self, company_id: str, connection_id: str, bill: Bill) -> JsonDict:
        """``bill.total_amount``/``amount_due`` are derived from its lines here."""
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            self._validate_bill_refs(ledger, bill)
            bill.id = new_id()
            bill.total_amount = money(sum((line.total for line in bill.line_items), Decimal(0)))
            bill.amount_due = bill.total_amount if bill.status != "Void" else Decimal("0.00")
            bill.source_modified_date = self._modified_now()
            self._put_bill(ledger, bill)
            body = bill.to_json()
            emit("bill.created", company_id, {"bill": body, "connection_id": connection_id})
        return body

    def update_bill(
        self, company_id: str, connection_id: str, bill_id: str, bill: Bill
    ) -> JsonDict:
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            current = self._bill(ledger, bill_id)
            if current.status != "Open":
                raise ValidationFailed(
                    [
                        ValidationItem(
                            f"Only Open bills can be updated; bill '{bill_id}' is"
                            f" {current.status}.",
                            "status",
                        )
                    ]
                )
            self._validate_bill_refs(ledger, bill)
            bill.id = bill_id
            bill.total_amount = money(sum((line.total for line in bill.line_items), Decimal(0)))
            bill.amount_due = bill.total_amount if bill.status != "Void" else Decimal("0.00")
            bill.source_modified_date = self._modified_now()
            self._put_bill(ledger, bill)
            body = bill.to_json()
            emit("bill.updated", company_id, {"bill": body, "connection_id": connection_id})
        return body

    # -- attachments ----------------------------------------------------------------------------

    def add_attachment(
        self,
        company_id: str,
        connection_id: str,
        bill_id: str,
        name: str,
        content_type: str,
        content: bytes,
    ) -> JsonDict:
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            self._bill(ledger, bill_id)
            _check_attachment(name, content)
            attachment = Attachment(new_id(), name, content_type, content, self.clock())
            ledger.attachments.setdefault(bill_id, {})[attachment.id] = attachment
            body = attachment.to_json()
            emit(
                "attachment.created",
                company_id,
                {"attachment": body, "bill_id": bill_id, "connection_id": connection_id},
            )
            return body

    def list_attachments(self, company_id: str, connection_id: str, bill_id: str) -> list[JsonDict]:
        with self._lock:
            ledger = self._read_ledger(company_id, connection_id)
            self._bill(ledger, bill_id)
            return [a.to_json() for a in ledger.attachments.get(bill_id, {}).values()]

    def get_attachment(
        self, company_id: str, connection_id: str, bill_id: str, attachment_id: str
    ) -> Attachment:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            self._bill(ledger, bill_id)
            attachment = ledger.attachments.get(bill_id, {}).get(attachment_id)
            if attachment is None:
                raise NotFound("Attachment", attachment_id)
            return replace(attachment)

    # -- mapping options, company info, bank accounts -------------------------------------------

    def bill_mapping_options(self, company_id: str, connection_id: str) -> JsonDict:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            return {
                "accounts": [a.to_json() for a in ledger.accounts.values()],
                "taxRates": [t.to_json() for t in ledger.tax_rates.values()],
            }

    def payment_mapping_options(self, company_id: str, connection_id: str) -> JsonDict:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            return {"bankAccounts": [b.to_json() for b in ledger.bank_accounts.values()]}

    def company_info(self, company_id: str, connection_id: str) -> JsonDict:
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            if ledger.company_info is not None:
                return ledger.company_info.to_json()
            return CompanyInfo(self._companies[company_id].name, "GBP").to_json()

    def create_bank_account(
        self, company_id: str, connection_id: str, bank_account: BankAccount
    ) -> JsonDict:
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            bank_account.id = new_id()
            bank_account.source_modified_date = self._modified_now()
            ledger.bank_accounts[bank_account.id] = bank_account
            body = bank_account.to_json()
            emit(
                "bank_account.created",
                company_id,
                {"bank_account": body, "connection_id": connection_id},
            )
        return body

    # -- payments -------------------------------------------------------------------------------

    @staticmethod
    def _check_payable(bill: Bill, amount: Decimal) -> None:
        errors: list[ValidationItem] = []
        if bill.status not in PAYABLE_BILL_STATUSES:
            errors.append(
                ValidationItem(
                    f"Bill '{bill.id}' is {bill.status};"
                    " only Open or PartiallyPaid bills can be paid.",
                    "billId",
                )
            )
        if amount <= 0:
            errors.append(ValidationItem("Payment amount must be greater than zero.", "amount"))
        elif bill.status in PAYABLE_BILL_STATUSES and amount > bill.amount_due:
            errors.append(
                ValidationItem(
                    f"Payment amount {amount} exceeds the amount due {bill.amount_due}.", "amount"
                )
            )
        if errors:
            raise ValidationFailed(errors)

    def create_payment(
        self,
        company_id: str,
        connection_id: str,
        bill_id: str,
        amount: Decimal,
        date: str,
        account_id: str,
        reference: str | None = None,
        currency_rate: Decimal | None = None,
    ) -> JsonDict:
        with self._change() as emit:
            ledger = self._writable_ledger(company_id, connection_id)
            bill = self._bill(ledger, bill_id)
            amount = money(amount)
            errors: list[ValidationItem] = []
            try:
                self._check_payable(bill, amount)
            except ValidationFailed as failed:
                errors.extend(failed.errors)
            account = ledger.bank_accounts.get(account_id)
            if account is None:
                errors.append(
                    ValidationItem(f"Bank account '{account_id}' does not exist.", "accountRef.id")
                )
            elif account.status != "Active":
                errors.append(
                    ValidationItem(f"Bank account '{account_id}' is archived.", "accountRef.id")
                )
            else:
                base = ledger.company_info.base_currency if ledger.company_info else None
                if account.currency not in (bill.currency, base or bill.currency):
                    errors.append(
                        ValidationItem(
                            f"Bank account currency {account.currency} is neither the bill's"
                            f" currency {bill.currency} nor the base currency {base}.",
                            "accountRef.id",
                        )
                    )
            if errors:
                raise ValidationFailed(errors)
            payment = Payment(
                id=new_id(),
                bill_id=bill_id,
                amount=amount,
                date=date,
                account_id=account_id,
                reference=reference,
                currency_rate=currency_rate,
            )
            self._apply_payment(ledger, bill, payment, emit, company_id, connection_id)
            return payment.to_json()

    def _apply_payment(
        self,
        ledger: Ledger,
        bill: Bill,
        payment: Payment,
        emit: Emit,
        company_id: str,
        connection_id: str,
    ) -> None:
        ledger.payments[payment.id] = payment
        ledger.bills_by_status[bill.status].remove(bill.seq)
        ledger.bill_order.remove(bill.seq)
        bill.amount_due = money(bill.amount_due - payment.amount)
        bill.status = "Paid" if bill.amount_due == 0 else "PartiallyPaid"
        bill.source_modified_date = self._modified_now()
        bill.seq = next(self._seq)
        ledger.bill_order.add(bill.seq, bill.id)
        ledger.bills_by_status[bill.status].add(bill.seq, bill.id)
        render_bill(ledger, bill)
        payment_body = payment.to_json()
        payment_body["billId"] = bill.id
        payment_body["external"] = payment.external
        emit(
            "payment.created",
            company_id,
            {"payment": payment_body, "connection_id": connection_id},
        )
        emit("bill.updated", company_id, {"bill": bill.to_json(), "connection_id": connection_id})

    def list_payments(
        self, company_id: str, connection_id: str, bill_id: str | None = None
    ) -> list[JsonDict]:
        """Not a Codat endpoint (the sync API lists no payments): for tests and control routes."""
        with self._lock:
            ledger = self._ledger(company_id, connection_id)
            out = []
            for p in ledger.payments.values():
                if bill_id is None or p.bill_id == bill_id:
                    body = p.to_json()
                    body["billId"] = p.bill_id
                    body["external"] = p.external
                    out.append(body)
            return out

    def report_failed_write(
        self,
        company_id: str,
        connection_id: str,
        data_type: str,
        write_type: str,
        record_id: str | None,
        errors: list[ValidationItem],
    ) -> None:
        """Publish ``write.failed`` for an API write the emulator refused (nothing changed)."""
        with self._change() as emit:
            if company_id not in self._companies:
                return
            emit(
                "write.failed",
                company_id,
                {
                    "connection_id": connection_id,
                    "data_type": data_type,
                    "write_type": write_type,
                    "record_id": record_id,
                    "errors": [{"itemId": e.item_id, "message": e.message} for e in errors],
                },
            )
