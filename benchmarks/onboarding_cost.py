"""What one onboarding costs: Codat API calls, state transitions and Lambda invocations, for the
webhook-driven workflow and for the polling approach of Codat's own sample, measured in one run.

    .venv/bin/python -m benchmarks.onboarding_cost   (after `make synth`)

Both run against one Codat emulator: the workflow is the synthesized stack on the local cloud
(Codat's signed webhooks through the webhook API, ingress and processor); the polling approach is what codatio/demo-bill-pay
does (create the company, send the user to Link, then poll every 1.5 s, at most 20 times), played
by this script over HTTP. For each, the SMB user authorizes after a short and after a long delay.

Codat API calls are counted by the emulator's rate limiter (every metered request, whatever its
answer). READY starts the payables sync's initial load of the company's books (billpay.bills): the
workflow's run waits for it to end, so that its calls are not counted against the next run, and
reports them apart (one Codat call per page, from the sync runs' own stats). Transitions and Lambda invocations of the workflow come from its execution history; the
webhooks add an ingress and a processor invocation per delivered webhook. The
polling approach runs no workflow here: its AWS figures are derived for a Step Functions loop
(a Wait, a polling Task, a Choice per poll), and marked so.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from codat_emulator.webhooks import dispatcher_for
from infra import constants
from localcloud.demo import press
from localcloud.product import ProductCloud, running_product

REPO = Path(__file__).resolve().parents[1]
# Codat's sample: 20 polls, 1.5 s apart.
POLLS, POLL_INTERVAL = 20, 1.5
USER_DELAYS = (3.0, 45.0)  # seconds before the SMB user presses Authorize


@dataclass
class Run:
    approach: str
    delay: float
    ready: bool
    seconds: float
    codat_calls: int
    transitions: int | str
    lambda_invocations: int | str
    load_calls: int | None = None  # the initial payables load READY starts (the workflow only)


def _codat_calls(product: ProductCloud) -> int:
    """Every metered request the emulator counted so far (all companies and client-level)."""
    store = product.emulator.store
    ids = ["", *(c["id"] for c in store.list_companies())]
    total = 0
    for company_id in ids:
        quota = store.quota_state(company_id)
        total += quota.limit - quota.remaining
    return total


def _initial_load(product: ProductCloud, company_id: str, timeout: float = 120.0) -> int:
    """Wait for the payables sync runs READY started for the company; the Codat calls they made
    (one a page, as their stats count)."""
    cloud = product.cloud
    sfn = cloud.client("stepfunctions")
    machine = cloud.output(constants.OUTPUT_PAYABLES_SYNC_STATE_MACHINE_ARN)
    prefix = f"sync-{company_id}-"
    deadline = time.monotonic() + timeout
    while True:
        listed = sfn.list_executions(stateMachineArn=machine)["executions"]
        runs = [e["executionArn"] for e in listed if e["name"].startswith(prefix)]
        if runs:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"no payables sync run started for {company_id} in {timeout}s")
        time.sleep(0.1)
    pages = 0
    for arn in runs:
        done = cloud.wait_for_execution(arn, timeout=timeout)
        if done["status"] != "SUCCEEDED":
            raise RuntimeError(f"the initial load of {company_id} ended {done['status']}")
        pages += int(json.loads(done["output"])["stats"]["pages"])
    return pages


def _authorize_later(link_url: str, delay: float) -> threading.Thread:
    def user() -> None:
        time.sleep(delay)
        with httpx.Client(timeout=30) as browser:
            press(browser, link_url, "authorize")

    thread = threading.Thread(target=user, daemon=True)
    thread.start()
    return thread


def workflow(product: ProductCloud, delay: float) -> Run:
    cloud, company_id = product.cloud, f"bench-{secrets.token_hex(4)}"
    before = _codat_calls(product)
    started = time.monotonic()
    with httpx.Client(base_url=cloud.api_url, timeout=35) as api:
        body = {"companyId": company_id, "name": "Bench Ltd", "platformKey": "gbol"}
        execution_arn = api.post("/companies", json=body).json()["executionArn"]
        company: dict[str, Any] = {}
        while company.get("waitingFor") != "authorization":
            time.sleep(0.05)
            answer = api.get(f"/companies/{company_id}")
            company = answer.json() if answer.status_code == 200 else {}
        user = _authorize_later(company["linkUrl"], delay)
        while company["status"] not in ("READY", "FAILED"):
            time.sleep(0.05)
            company = api.get(f"/companies/{company_id}").json()
        user.join()
    description = cloud.wait_for_execution(execution_arn)
    history = cloud.history(execution_arn)
    dispatcher = dispatcher_for(product.emulator.store)
    dispatcher.wait_until_idle(30)
    webhooks = sum(
        1
        for d in dispatcher.deliveries()
        if d["companyId"] == company["codatCompanyId"] and d["state"] == "delivered"
    )
    invocations = sum(1 for e in history if e["type"] == "TaskScheduled")
    load_calls = _initial_load(product, company_id)
    return Run(
        approach="webhooks + task tokens (this project)",
        delay=delay,
        ready=company["status"] == "READY" and description["status"] == "SUCCEEDED",
        seconds=time.monotonic() - started,
        codat_calls=_codat_calls(product) - before - load_calls,
        transitions=sum(1 for e in history if e["type"].endswith("StateEntered")),
        lambda_invocations=f"{invocations} + {2 * webhooks} for {webhooks} webhooks",
        load_calls=load_calls,
    )


def polling(product: ProductCloud, delay: float) -> Run:
    """Codat's sample: create the company, send the user to Link, poll until the bills answer."""
    before = _codat_calls(product)
    started = time.monotonic()
    with product.emulator.http() as codat:
        company = codat.post("/companies", json={"name": "Polling Ltd"}).json()
        connection = codat.post(
            f"/companies/{company['id']}/connections", json={"platformKey": "gbol"}
        ).json()
        user = _authorize_later(connection["linkUrl"], delay)
        ready, polls = False, 0
        while polls < POLLS and not ready:
            time.sleep(POLL_INTERVAL)
            polls += 1
            bills = codat.get(
                f"/companies/{company['id']}/connections/{connection['id']}/payables/bills"
            )
            ready = bills.status_code == 200  # 409 until the data set is read
        seconds = time.monotonic() - started  # when it had the data, or gave up
        user.join()
    return Run(
        approach="polling, 20 x 1.5 s (Codat's sample)",
        delay=delay,
        ready=ready,
        seconds=seconds,
        codat_calls=_codat_calls(product) - before,
        # As a Step Functions loop: a Wait, the polling Task and a Choice per poll.
        transitions=f"{3 * polls} (derived)",
        lambda_invocations=f"{polls} (derived)",
    )


def main() -> None:
    # The handlers run in this process: keep their logs to warnings so the tables stay readable.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    runs: list[Run] = []
    with running_product(REPO / "cdk.out") as product:
        for delay in USER_DELAYS:
            runs.append(workflow(product, delay))
            runs.append(polling(product, delay))
    print("| approach | user authorizes after (s) | READY | wall time (s) | Codat API calls |")
    print("| --- | --- | --- | --- | --- |")
    for run in runs:
        print(
            f"| {run.approach} | {run.delay:.0f} | {'yes' if run.ready else 'no (gave up)'} "
            f"| {run.seconds:.1f} | {run.codat_calls}"
            + (f" + {run.load_calls} initial load" if run.load_calls is not None else "")
            + " |"
        )
    print()
    print("| approach | user authorizes after (s) | state transitions | Lambda invocations |")
    print("| --- | --- | --- | --- |")
    for run in runs:
        print(
            f"| {run.approach} | {run.delay:.0f} | {run.transitions} | {run.lambda_invocations} |"
        )


if __name__ == "__main__":
    main()
