"""The accounting platforms' rules, checked before Codat sees a write, with the reason in the answer.

Codat would refuse most of these itself, some only after the write is queued at the platform (a
`*.write.unsuccessful` webhook later): checking first answers the product at once and spends no
Codat quota. Sources: Codat's Bill Pay docs (reference lengths, FreeAgent's 40 lines, supplier
update replacing the record, updates on Open bills only) and its attachment table for Xero,
QuickBooks Online and NetSuite; Codat documents no attachment limits for FreeAgent, Sage Intacct
and Zoho Books, so those take a conservative common set.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from pathlib import PurePosixPath

from billpay.bills.models import (
    BillDraft,
    BillRecord,
    BillStatus,
    SupplierDraft,
    SupplierRecord,
    SupplierStatus,
)
from billpay.core.errors import BillPayError, ConflictError

XERO, QUICKBOOKS, FREEAGENT, NETSUITE, INTACCT, ZOHO = (
    "gbol",
    "qhyg",
    "fbrh",
    "akxx",
    "knfz",
    "rwuv",
)
PLATFORM_NAMES = {
    XERO: "Xero",
    QUICKBOOKS: "QuickBooks Online",
    FREEAGENT: "FreeAgent",
    NETSUITE: "NetSuite",
    INTACCT: "Sage Intacct",
    ZOHO: "Zoho Books",
}
BILL_REFERENCE_LIMITS = {
    QUICKBOOKS: 21,
    NETSUITE: 45,
    ZOHO: 50,
    INTACCT: 100,
    XERO: 255,
    FREEAGENT: 255,
}
BILL_LINE_LIMITS = {FREEAGENT: 40}

MB = 1_000_000
# The product API takes an attachment base64 in a JSON body, and Lambda takes at most 6 MB of
# request: 4 MiB of file is what fits with room for the rest of the body.
API_ATTACHMENT_LIMIT = 4 * 1024 * 1024
_XERO_TYPES = (
    "7z bmp csv doc docx eml gif jpeg jpg keynote msg numbers odf ods odt pages pdf png ppt pptx "
    "rar rtf tif tiff txt xls xlsx zip"
)
_QUICKBOOKS_TYPES = "ai csv doc docx eps gif jpeg jpg ods pages pdf png rtf tif txt xls xlsx xml"
_NETSUITE_TYPES = "bmp csv xls xlsx json pdf pjpg pjpeg png txt svg tif tiff doc docx zip"
_COMMON_TYPES = "pdf png jpg jpeg gif"


@dataclass(frozen=True)
class AttachmentRule:
    max_bytes: int
    extensions: frozenset[str]


ATTACHMENT_RULES = {
    XERO: AttachmentRule(10 * MB, frozenset(_XERO_TYPES.split())),
    QUICKBOOKS: AttachmentRule(100 * MB, frozenset(_QUICKBOOKS_TYPES.split())),
    NETSUITE: AttachmentRule(100 * MB, frozenset(_NETSUITE_TYPES.split())),
}
_CONSERVATIVE = AttachmentRule(5 * MB, frozenset(_COMMON_TYPES.split()))


class PlatformRuleError(BillPayError):
    """The accounting platform would refuse this write."""

    code = "PlatformRule"
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY


class AttachmentTooLargeError(BillPayError):
    code = "AttachmentTooLarge"
    http_status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class AttachmentTypeRefusedError(BillPayError):
    code = "AttachmentTypeRefused"
    http_status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


def platform_name(platform_key: str) -> str:
    return PLATFORM_NAMES.get(platform_key, platform_key)


def check_bill(platform_key: str, bill: BillDraft, supplier: SupplierRecord | None) -> None:
    """A new or changed bill: its supplier, its reference's length, its number of lines."""
    name = platform_name(platform_key)
    if supplier is None:
        raise PlatformRuleError(f"supplier {bill.supplier_id!r} is not known for this company")
    if supplier.status is SupplierStatus.ARCHIVED:
        raise PlatformRuleError(f"supplier {bill.supplier_id!r} is archived in {name}")
    limit = BILL_REFERENCE_LIMITS.get(platform_key)
    if bill.reference and limit is not None and len(bill.reference) > limit:
        raise PlatformRuleError(
            f"{name} takes bill references of at most {limit} characters; "
            f"this one has {len(bill.reference)}"
        )
    lines = BILL_LINE_LIMITS.get(platform_key)
    if lines is not None and len(bill.line_items) > lines:
        raise PlatformRuleError(
            f"{name} takes at most {lines} lines on a bill; this one has {len(bill.line_items)}"
        )


def check_bill_update(stored: BillRecord) -> None:
    """Codat updates Open bills only (and replaces every line)."""
    if stored.status is not BillStatus.OPEN:
        raise ConflictError(
            f"only Open bills can be updated; bill {stored.bill_id!r} is {stored.status}"
        )


def check_supplier_update(supplier: SupplierDraft) -> None:
    """Codat's supplier update replaces the whole record: a field left out would be deleted in
    the accounting software, so every field must be sent (null to clear it on purpose)."""
    missing = [
        field.alias or name
        for name, field in SupplierDraft.model_fields.items()
        if name not in supplier.model_fields_set
    ]
    if missing:
        raise PlatformRuleError(
            "a supplier update replaces the whole record in the accounting software: send every "
            f"field, null to clear one (missing: {', '.join(missing)})"
        )


def check_attachment(platform_key: str, file_name: str, size: int) -> None:
    name = platform_name(platform_key)
    rule = ATTACHMENT_RULES.get(platform_key, _CONSERVATIVE)
    if size > API_ATTACHMENT_LIMIT:
        raise AttachmentTooLargeError(
            f"the attachment is {size} bytes; this API takes at most {API_ATTACHMENT_LIMIT}"
        )
    if size > rule.max_bytes:
        raise AttachmentTooLargeError(
            f"{name} takes attachments of at most {rule.max_bytes} bytes; this one is {size}"
        )
    if size == 0:
        raise PlatformRuleError("the attachment is empty")
    extension = PurePosixPath(file_name).suffix.lower().removeprefix(".")
    if extension not in rule.extensions:
        raise AttachmentTypeRefusedError(
            f"{name} does not take .{extension or '(no extension)'} attachments; it takes "
            + ", ".join(f".{e}" for e in sorted(rule.extensions))
        )
