"""The daily request quota: ``1000 x (1 + companies with a Linked connection)`` by default, per
company (``""`` for calls not under a company), reset at 00:00 UTC by the store's clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from codat_emulator.store.companies import CompaniesStore
from codat_emulator.store.core import Emit, JsonDict, iso


@dataclass
class QuotaState:
    limit: int
    remaining: int
    resets_at: datetime


@dataclass
class _Quota:
    day: str
    used: int = 0
    limit_override: int | None = None
    exhausted_reported: bool = False


class QuotaStore(CompaniesStore):
    def _init_quota(self, daily_quota_base: int) -> None:
        self.daily_quota_base = daily_quota_base
        self._quotas: dict[str, _Quota] = {}

    def _on_company_deleted(self, company_id: str) -> None:
        super()._on_company_deleted(company_id)
        self._quotas.pop(company_id, None)

    def _today(self) -> str:
        return self.clock().astimezone(UTC).date().isoformat()

    def _next_reset(self) -> datetime:
        now = self.clock().astimezone(UTC)
        return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)

    def _quota(self, key: str, emit: Emit) -> _Quota:
        today = self._today()
        quota = self._quotas.get(key)
        if quota is None:
            quota = self._quotas[key] = _Quota(day=today)
        elif quota.day != today:
            was_exhausted = quota.exhausted_reported
            quota.day, quota.used, quota.exhausted_reported = today, 0, False
            quota.limit_override = None
            if was_exhausted:
                emit("quota.reset", key, self._quota_body(quota))
        return quota

    def _limit(self, quota: _Quota) -> int:
        if quota.limit_override is not None:
            return quota.limit_override
        return self.daily_quota_base * (1 + len(self._linked_companies))

    def _quota_body(self, quota: _Quota) -> JsonDict:
        limit = self._limit(quota)
        return {
            "dailyQuota": limit,
            "quotaRemaining": max(0, limit - quota.used),
            "expiryDate": iso(self._next_reset()),
        }

    def consume_quota(self, company_id: str) -> tuple[bool, QuotaState]:
        """Count one request against ``company_id``'s daily quota (``""`` for client-level calls).

        Returns (allowed, state after the call). A refused call is not counted."""
        with self._change() as emit:
            quota = self._quota(company_id, emit)
            limit = self._limit(quota)
            allowed = quota.used < limit
            if allowed:
                quota.used += 1
            if quota.used >= limit and not quota.exhausted_reported:
                quota.exhausted_reported = True
                emit("quota.exhausted", company_id, self._quota_body(quota))
            return allowed, QuotaState(limit, max(0, limit - quota.used), self._next_reset())

    def quota_state(self, company_id: str) -> QuotaState:
        with self._change() as emit:
            quota = self._quota(company_id, emit)
            limit = self._limit(quota)
            return QuotaState(limit, max(0, limit - quota.used), self._next_reset())

    def set_quota(
        self, company_id: str, remaining: int | None = None, limit: int | None = None
    ) -> QuotaState:
        """Override the day's limit and/or what is left of it (``remaining=0`` exhausts it)."""
        with self._change() as emit:
            quota = self._quota(company_id, emit)
            if limit is not None:
                quota.limit_override = limit
            effective = self._limit(quota)
            if remaining is not None:
                quota.used = max(0, effective - remaining)
            if quota.used >= effective and not quota.exhausted_reported:
                quota.exhausted_reported = True
                emit("quota.exhausted", company_id, self._quota_body(quota))
            elif quota.used < effective and quota.exhausted_reported:
                quota.exhausted_reported = False
                emit("quota.reset", company_id, self._quota_body(quota))
            return QuotaState(effective, max(0, effective - quota.used), self._next_reset())

    def reset_quota(self, company_id: str) -> QuotaState:
        """Back to a fresh day: no override, nothing used."""
        with self._change() as emit:
            quota = self._quota(company_id, emit)
            quota.limit_override = None
            quota.used = 0
            if quota.exhausted_reported:
                quota.exhausted_reported = False
                emit("quota.reset", company_id, self._quota_body(quota))
            limit = self._limit(quota)
            return QuotaState(limit, limit, self._next_reset())
