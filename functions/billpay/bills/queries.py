"""The product's reads of a company's payables: bills by status and due date, suppliers, accounts.

Every listing is a Query on the company's partition (bills through a local index, in due date
order), one page at a time; the page token that continues it is signed (`page_token`), so a token
is only taken back for the company and the filters it was issued for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from billpay.bills.models import (
    COPY_READABLE_STATUSES,
    BillRecord,
    BillStatus,
    Connection,
    PaymentAccount,
    SupplierRecord,
)
from billpay.bills.page_token import PageTokens
from billpay.bills.ports import BillFilter, PayablesReader
from billpay.companies.ports import CompanyRepository
from billpay.core.errors import NotFoundError

T = TypeVar("T")
PageSize = Annotated[int, Field(ge=1, le=100)]
DEFAULT_PAGE_SIZE = 50


class _Params(BaseModel):
    # Unknown parameters are refused: a misspelt filter must not silently list everything.
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    limit: PageSize = DEFAULT_PAGE_SIZE
    page_token: str | None = Field(default=None, alias="pageToken", min_length=1)


class BillListParams(_Params):
    """Query string of GET /companies/{companyId}/bills."""

    status: BillStatus | None = None
    due_after: date | None = Field(default=None, alias="dueAfter")
    due_before: date | None = Field(default=None, alias="dueBefore")

    @model_validator(mode="after")
    def _due_range_not_empty(self) -> BillListParams:
        if self.due_after and self.due_before and self.due_after >= self.due_before:
            raise ValueError("dueAfter must be before dueBefore")
        return self

    def filter(self) -> BillFilter:
        return BillFilter(status=self.status, due_after=self.due_after, due_before=self.due_before)

    def listing(self) -> str:
        """What a page token is bound to: these filters (the page size may change)."""
        status, after, before = self.status or "", self.due_after or "", self.due_before or ""
        return f"bills?status={status}&dueAfter={after}&dueBefore={before}"


class SupplierListParams(_Params):
    """Query string of GET /companies/{companyId}/suppliers."""

    def listing(self) -> str:
        return "suppliers"


@dataclass(frozen=True)
class ResultPage(Generic[T]):
    items: list[T]
    next_page_token: str | None


def list_bills(
    company_id: str,
    params: BillListParams,
    companies: CompanyRepository,
    payables: PayablesReader,
    tokens: PageTokens,
) -> ResultPage[BillRecord]:
    readable_company(companies, company_id)
    start = (
        tokens.read(params.page_token, company_id, params.listing()) if params.page_token else None
    )
    bills, last = payables.query_bills(company_id, params.filter(), params.limit, start)
    following = tokens.issue(company_id, params.listing(), last) if last else None
    return ResultPage(bills, following)


def get_bill(
    company_id: str, bill_id: str, companies: CompanyRepository, payables: PayablesReader
) -> BillRecord:
    readable_company(companies, company_id)
    found = payables.bill(company_id, bill_id)
    if found is None:
        raise NotFoundError(f"bill {bill_id!r} is not known for company {company_id!r}")
    return found


def list_suppliers(
    company_id: str,
    params: SupplierListParams,
    companies: CompanyRepository,
    payables: PayablesReader,
    tokens: PageTokens,
) -> ResultPage[SupplierRecord]:
    readable_company(companies, company_id)
    start = (
        tokens.read(params.page_token, company_id, params.listing()) if params.page_token else None
    )
    suppliers, last = payables.list_suppliers(company_id, params.limit, start)
    following = tokens.issue(company_id, params.listing(), last) if last else None
    return ResultPage(suppliers, following)


def get_supplier(
    company_id: str, supplier_id: str, companies: CompanyRepository, payables: PayablesReader
) -> SupplierRecord:
    readable_company(companies, company_id)
    found = payables.supplier(company_id, supplier_id)
    if found is None:
        raise NotFoundError(f"supplier {supplier_id!r} is not known for company {company_id!r}")
    return found


def list_payment_accounts(
    company_id: str, companies: CompanyRepository, payables: PayablesReader
) -> list[PaymentAccount]:
    readable_company(companies, company_id)
    return payables.payment_accounts(company_id)


def readable_company(companies: CompanyRepository, company_id: str) -> Connection:
    company = companies.get(company_id)
    if company is None:
        raise NotFoundError(f"company {company_id!r} is not known")
    return Connection.of(company, COPY_READABLE_STATUSES)
