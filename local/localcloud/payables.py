"""An SMB's payables on the local cloud: Linked in the Codat emulator with a seeded set of books,
READY in the product, and the product's sync, API and copy of the payables around it.

    with running_product(Path("cdk.out")) as product:
        smb = linked_smb(product, bills=300)
        done = smb.sync("initial")             # a run of the sync state machine, to its end
        smb.control("bills/{id}/pay")          # the accounting platform changes something
        smb.read()                             # Codat reads again: read.completed -> a run
        smb.api().get(f"/companies/{smb.company_id}/bills", params={"status": "Open"})

The books are loaded by the emulator's Link (what an SMB authorizing does); the company record is
written by the product's repository, as onboarding leaves it. Nothing else is faked.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from billpay.bills.repository import DynamoPayablesRepository
from billpay.bills.sync import sync_run_id
from billpay.companies.models import CompanyRecord, CompanyStatus
from billpay.companies.repository import DynamoCompanyRepository
from localcloud.product import ProductCloud

# Output ids of the stacks (infra/constants.py).
OUTPUT_COMPANIES_TABLE = "CompaniesTableName"
OUTPUT_PAYABLES_TABLE = "PayablesTableName"
OUTPUT_PAYABLES_SYNC_STATE_MACHINE_ARN = "PayablesSyncStateMachineArn"


@dataclass
class LinkedSmb:
    product: ProductCloud
    company_id: str
    codat_company_id: str
    connection_id: str
    platform_key: str

    # --- the sync ---------------------------------------------------------------------------------

    def start_sync(self, cause: str, **request: Any) -> str:
        """Start a run as the webhook processor's requester does; returns the execution ARN."""
        run_id = sync_run_id(self.company_id, cause)
        sfn = self.product.cloud.client("stepfunctions")
        answer = sfn.start_execution(
            stateMachineArn=self.sync_machine,
            name=run_id,
            input=json.dumps({"companyId": self.company_id, "runId": run_id, **request}),
        )
        arn: str = answer["executionArn"]
        return arn

    def sync(self, cause: str, timeout: float = 300, **request: Any) -> dict[str, Any]:
        """A run from start to end; its final cursor (stats included), or AssertionError."""
        return self.finished(self.start_sync(cause, **request), timeout)

    def finished(self, execution_arn: str, timeout: float = 300) -> dict[str, Any]:
        done = self.product.cloud.wait_for_execution(execution_arn, timeout=timeout)
        assert done["status"] == "SUCCEEDED", done
        output: dict[str, Any] = json.loads(done["output"])
        return output

    def runs(self) -> list[dict[str, Any]]:
        """This company's runs of the sync state machine."""
        sfn = self.product.cloud.client("stepfunctions")
        listed = sfn.list_executions(stateMachineArn=self.sync_machine)["executions"]
        prefix = f"sync-{self.company_id}-"
        return [e for e in listed if e["name"].startswith(prefix)]

    @property
    def sync_machine(self) -> str:
        return self.product.cloud.output(OUTPUT_PAYABLES_SYNC_STATE_MACHINE_ARN)

    # --- the accounting platform and Codat (the emulator) ----------------------------------------

    def control(self, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
        """A change the accounting platform makes on its own (the emulator's control routes)."""
        base = f"/_emulator/companies/{self.codat_company_id}/connections/{self.connection_id}"
        with self.product.emulator.http() as http:
            answer = http.request(method, f"{base}/{path}", json=body or {})
        assert answer.is_success, answer.text
        return answer.json()

    def read(self) -> None:
        """Codat reads the books again: `read.completed` goes to the product's webhook."""
        self.control("read")

    def codat_bills(self) -> dict[str, dict[str, Any]]:
        """Every bill Codat holds, in every status (the emulator's store: no quota spent)."""
        return {b["id"]: b for b in self._everything(self._store.list_bills, None)}

    def codat_suppliers(self) -> dict[str, dict[str, Any]]:
        return {s["id"]: s for s in self._everything(self._store.list_suppliers)}

    def codat_attachments(self, bill_id: str) -> list[dict[str, Any]]:
        attachments: list[dict[str, Any]] = self._store.list_attachments(*self._ids, bill_id)
        return attachments

    def codat_calls(self) -> int:
        """Requests the company has cost so far today (Codat's daily quota, as counted)."""
        state = self._store.quota_state(self.codat_company_id)
        used: int = state.limit - state.remaining
        return used

    def _everything(self, listing: Any, *statuses: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after = 0
        while True:
            page = listing(*self._ids, after, 1000, *statuses)
            found += page.items
            if page.next_after is None:
                return found
            after = page.next_after

    @property
    def _store(self) -> Any:
        return self.product.emulator.store

    @property
    def _ids(self) -> tuple[str, str]:
        return self.codat_company_id, self.connection_id

    # --- the product ------------------------------------------------------------------------------

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.product.cloud.api_url, timeout=60)

    def copy(self) -> DynamoPayablesRepository:
        cloud = self.product.cloud
        return DynamoPayablesRepository(
            cloud.client("dynamodb"), cloud.output(OUTPUT_PAYABLES_TABLE)
        )

    def copied_bills(self) -> dict[str, dict[str, Any]]:
        """The product's copy of every bill, as the API answers it."""
        found: dict[str, dict[str, Any]] = {}
        token = None
        with self.api() as api:
            while True:
                params = {"limit": "100", **({"pageToken": token} if token else {})}
                answer = api.get(f"/companies/{self.company_id}/bills", params=params)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                found.update({b["id"]: b for b in body["items"]})
                token = body.get("nextPageToken")
                if token is None:
                    return found


def linked_smb(
    product: ProductCloud, bills: int, platform_key: str = "gbol", seed: str | None = None
) -> LinkedSmb:
    """A new SMB: its Codat company and connection created through the emulator's API, the SMB
    authorizing through Link (which loads `bills` seeded bills, with suppliers and accounts, and
    completes the initial read), and the company READY in the product."""
    emulator = product.emulator
    with emulator.http(timeout=120) as http:
        company = http.post("/companies", json={"name": f"Books {secrets.token_hex(3)}"}).json()
        connection = http.post(
            f"/companies/{company['id']}/connections", json={"platformKey": platform_key}
        ).json()
        if seed is not None:
            http.put(f"/_emulator/companies/{company['id']}/dataset", json={"seed": seed})
        authorized = http.post(
            f"/_emulator/link/{company['id']}/connections/{connection['id']}",
            json={"action": "authorize", "size": bills},
        )
        assert authorized.is_success, authorized.text
    smb = LinkedSmb(
        product=product,
        company_id=f"smb-{secrets.token_hex(4)}",
        codat_company_id=company["id"],
        connection_id=connection["id"],
        platform_key=platform_key,
    )
    record_ready(
        product,
        smb.company_id,
        smb.codat_company_id,
        smb.connection_id,
        smb.platform_key,
        name="Books Ltd",
    )
    return smb


def record_ready(
    product: ProductCloud,
    company_id: str,
    codat_company_id: str,
    connection_id: str,
    platform_key: str,
    name: str,
) -> None:
    """The company record onboarding leaves behind at READY, written directly: for tests and
    benchmarks that start from a linked SMB rather than play onboarding."""
    cloud = product.cloud
    now = datetime.now(UTC)
    companies = DynamoCompanyRepository(
        cloud.client("dynamodb"), cloud.output(OUTPUT_COMPANIES_TABLE)
    )
    created = companies.create(
        CompanyRecord(
            company_id=company_id,
            name=name,
            status=CompanyStatus.READY,
            onboarding_execution_arn=(
                f"arn:aws:states:{cloud.region}:{cloud.account_id}:execution:onboarding:"
                f"{company_id}"
            ),
            created_at=now,
            updated_at=now,
            platform_key=platform_key,
            codat_company_id=codat_company_id,
            connection_id=connection_id,
            connection_status="Linked",
        )
    )
    assert created, f"company {company_id} exists already"


def wait_until(predicate: Any, timeout: float = 60, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not hold in time")
        time.sleep(every)
