"""Changing a company: optimistic concurrency, and the meeting point of webhooks and waits.

A webhook (`record_signal`) and an onboarding step (`arm_wait`) can reach a company in either
order, or at once. Both write conditionally on the record's version, and whichever comes second
sees what the first wrote:
- the signal first: it is stored on the company; the wait, when armed, finds it and resumes at once;
- the wait first: its task token is stored; the signal, when it comes, resumes the workflow.
The workflow is resumed only after the write that consumed the signal succeeded, so a signal is
handed to at most one wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billpay.companies.models import CompanyRecord, Signal, Wait
from billpay.companies.ports import CompanyRepository, TaskResumer
from billpay.core.errors import BillPayError, NotFoundError

# Conflicting writers on one company are rare (a webhook and a step at the same instant); a few
# re-reads settle them. Running out means something writes in a loop: fail loudly.
MAX_ATTEMPTS = 8


class ConcurrentUpdateError(BillPayError):
    code = "ConcurrentUpdate"


Change = Callable[[CompanyRecord], CompanyRecord | None]


def update_company(
    companies: CompanyRepository,
    company_id: str,
    change: Change,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CompanyRecord:
    """Apply `change` to the stored company and write it back if nobody wrote in between.

    `change` is a pure function of the current record: it returns the next record, or None to leave
    the company as it is. It may run several times (once per attempt). Returns the stored record.
    """
    for _ in range(MAX_ATTEMPTS):
        current = companies.get(company_id)
        if current is None:
            raise NotFoundError(f"company {company_id!r} is not known")
        changed = change(current)
        if changed is None or changed == current:
            return current
        written = changed.model_copy(update={"version": current.version + 1, "updated_at": now()})
        if companies.replace(written, expected_version=current.version):
            return written
    raise ConcurrentUpdateError(
        f"company {company_id!r} changed under {MAX_ATTEMPTS} attempts in a row"
    )


@dataclass(frozen=True)
class WaitOutcome:
    record: CompanyRecord
    # The signal handed to the waiting workflow by this call, if any.
    delivered: Signal | None


def record_signal(
    companies: CompanyRepository, resumer: TaskResumer, company_id: str, signal: Signal
) -> WaitOutcome:
    """Keep what a webhook said for the wait of its kind; resume that wait if it is parked here.

    An older signal never replaces a newer one of the same kind (events arrive out of order).
    A parked token that no longer waits (its task timed out to reconcile, or the execution
    stopped) does not swallow the signal: it is kept for the next wait instead.
    """
    consumed: list[Wait] = []
    dead_tokens: set[str] = set()

    def change(record: CompanyRecord) -> CompanyRecord | None:
        consumed.clear()
        wait = record.wait
        if wait is not None and wait.token in dead_tokens:
            record = record.model_copy(update={"wait": None})
            wait = None
        if wait is not None and wait.kind == signal.kind and _settles(signal, wait):
            consumed.append(wait)
            return record.model_copy(update={"wait": None})
        stored = record.signals.get(signal.kind)
        if stored is not None and stored.occurred_at >= signal.occurred_at:
            return record
        return record.model_copy(update={"signals": {**record.signals, signal.kind: signal}})

    while True:
        record = update_company(companies, company_id, change)
        if not consumed:
            return WaitOutcome(record, None)
        if resumer.resume(consumed[0].token, signal_output(signal)):
            return WaitOutcome(record, signal)
        dead_tokens.add(consumed[0].token)


def arm_wait(
    companies: CompanyRepository, resumer: TaskResumer, company_id: str, wait: Wait
) -> WaitOutcome:
    """Park a task token on the company; resume it at once if its signal already arrived."""
    early: list[Signal] = []

    def change(record: CompanyRecord) -> CompanyRecord:
        early.clear()
        stored = record.signals.get(wait.kind)
        if stored is not None and _settles(stored, wait):
            early.append(stored)
            signals = {k: s for k, s in record.signals.items() if k != wait.kind}
            return record.model_copy(update={"wait": None, "signals": signals})
        return record.model_copy(update={"wait": wait})

    record = update_company(companies, company_id, change)
    if early:
        resumer.resume(wait.token, signal_output(early[0]))
        return WaitOutcome(record, early[0])
    return WaitOutcome(record, None)


def _settles(signal: Signal, wait: Wait) -> bool:
    if wait.connection_id is not None and signal.detail.get("connectionId") != wait.connection_id:
        return False
    return signal.occurred_at >= wait.not_before


def signal_output(signal: Signal) -> dict[str, Any]:
    """What a resumed wait receives: the signal as JSON (the state machine's Choice reads it)."""
    return signal.model_dump(mode="json", by_alias=True)
