"""Onboarding on the local cloud against the Codat emulator: the deployed state machine, the real
handlers, Codat's API as the emulator serves it, and Codat's webhooks resuming the waits: signed by
the emulator, posted to the webhook API, verified by the ingress, queued, and applied by the
processor, which hands each signal to the wait (record_signal, SendTaskSuccess).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from billpay.companies.models import PRODUCT_COMPANY_ID_TAG
from codat_emulator.webhooks import dispatcher_for
from localcloud.product import ProductCloud

MACHINE = "OnboardingStateMachineArn"
# Short waits for the tests that need the reconcile or the expiry to happen (real seconds: moto
# runs TimeoutSeconds in real time).
FAST = {"reconcileIntervalSeconds": 1, "linkExpirySeconds": 600, "initialReadTimeoutSeconds": 600}


@pytest.fixture(scope="module")
def product(product_with_codat: ProductCloud) -> ProductCloud:
    return product_with_codat


@pytest.fixture(scope="module")
def http(product: ProductCloud) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=product.cloud.api_url, timeout=35) as client:
        yield client


@contextlib.contextmanager
def webhook_options(product: ProductCloud, **options: Any) -> Iterator[None]:
    """Codat's delivery quirks (duplicates, reordering) for one test; the module shares the
    emulator, so they are put back after."""
    dispatcher = dispatcher_for(product.emulator.store)
    before = dispatcher.options.model_dump()
    dispatcher.update_options(options)
    try:
        yield
    finally:
        dispatcher.wait_until_idle(30)
        dispatcher.update_options(before)


def _deliveries(product: ProductCloud, codat_company_id: str) -> list[dict[str, Any]]:
    return [
        d
        for d in dispatcher_for(product.emulator.store).deliveries()
        if d["companyId"] == codat_company_id
    ]


@pytest.fixture(scope="module")
def bus_events(product: ProductCloud) -> Callable[[str], list[dict[str, Any]]]:
    """Every event the product published on its bus, read through an SQS queue subscribed to it."""
    cloud = product.cloud
    sqs, events = cloud.client("sqs"), cloud.client("events")
    queue_url = sqs.create_queue(QueueName=f"bus-capture-{secrets.token_hex(3)}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    bus = cloud.output("EventBusName")
    events.put_rule(Name="capture", EventBusName=bus, EventPattern='{"source": ["billpay"]}')
    events.put_targets(
        Rule="capture", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
    )
    seen: list[dict[str, Any]] = []

    def read(company_id: str) -> list[dict[str, Any]]:
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                break
            seen.extend(json.loads(m["Body"]) for m in batch)
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
                ],
            )
        return [e for e in seen if e["detail"]["companyId"] == company_id]

    return read


def _company_id() -> str:
    return f"smb-{secrets.token_hex(4)}"


def _body(company_id: str, **changes: Any) -> dict[str, Any]:
    return {"companyId": company_id, "name": "Acme Ltd", "platformKey": "gbol", **changes}


def _until(
    http: httpx.Client, company_id: str, done: Callable[[dict[str, Any]], bool], timeout=60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = http.get(f"/companies/{company_id}")
        company = answer.json() if answer.status_code == 200 else {}
        if company and done(company):
            return company
        if time.monotonic() > deadline:
            raise AssertionError(f"{company_id} did not get there in {timeout}s: {company}")
        time.sleep(0.05)


def _waiting_for(http: httpx.Client, company_id: str, kind: str) -> dict[str, Any]:
    return _until(http, company_id, lambda c: c["waitingFor"] == kind)


def _codat_companies(product: ProductCloud, company_id: str) -> list[dict[str, Any]]:
    """The emulator's companies tagged with the product's id (there must be exactly one)."""
    return [
        c
        for c in product.emulator.store.list_companies()
        if c["tags"].get(PRODUCT_COMPANY_ID_TAG) == company_id
    ]


def _link(product: ProductCloud, company: dict[str, Any], action: str, **extra: Any) -> Any:
    """The SMB user in Link (the emulator's JSON route for the Link page's buttons)."""
    path = f"/_emulator/link/{company['codatCompanyId']}/connections/{company['connectionId']}"
    with product.emulator.http() as emulator:
        answer = emulator.post(path, json={"action": action, "size": 20, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _start(http: httpx.Client, company_id: str, **changes: Any) -> str:
    answer = http.post("/companies", json=_body(company_id, **changes))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["executionArn"])


def _start_directly(product: ProductCloud, payload: dict[str, Any], name: str | None = None) -> str:
    sfn = product.cloud.client("stepfunctions")
    kwargs = {"name": name} if name else {}
    return str(
        sfn.start_execution(
            stateMachineArn=product.cloud.output(MACHINE), input=json.dumps(payload), **kwargs
        )["executionArn"]
    )


def _states_entered(product: ProductCloud, execution_arn: str) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"]
        for e in product.cloud.history(execution_arn)
        if "stateEnteredEventDetails" in e
    ]


def _authorize(product, http, company_id) -> dict[str, Any]:
    """The user authorizes in Link; Codat's webhooks take the company to READY."""
    company = _waiting_for(http, company_id, "authorization")
    _link(product, company, "authorize")
    return _until(http, company_id, lambda c: c["status"] == "READY")


# --- the journey -------------------------------------------------------------------------------


def test_happy_path_to_ready(product, http, bus_events):
    company_id = _company_id()
    # Given the product starts onboarding for an SMB on Xero
    execution_arn = _start(http, company_id, redirectUrl="https://app.example/linked")
    # Then the company waits for the SMB user, with a Link URL to send them to
    pending = _waiting_for(http, company_id, "authorization")
    assert pending["status"] == "PENDING_LINK"
    assert pending["linkUrl"].startswith(product.emulator.base_url)
    assert pending["connectionStatus"] == "PendingAuth"
    assert pending["codatCompanyId"]
    assert pending["codatCompanyId"] != company_id
    (link_ready,) = [e for e in bus_events(company_id) if e["detail-type"] == "LinkReady"]
    assert link_ready["detail"]["linkUrl"] == pending["linkUrl"]
    assert link_ready["detail"]["redirectUrl"] == "https://app.example/linked"
    # When the user authorizes in Link and Codat's webhooks arrive
    ready = _authorize(product, http, company_id)
    # Then the company is READY, with what Codat read
    assert ready["connectionStatus"] == "Linked"
    assert ready["linkUrl"] is None
    assert ready["dataTypes"]["bills"] == "Complete"
    assert ready["lastError"] is None
    execution = product.cloud.wait_for_execution(execution_arn)
    assert execution["status"] == "SUCCEEDED"
    assert "ReconcileAuthorization" not in _states_entered(product, execution_arn)  # no polling
    (codat_company,) = _codat_companies(product, company_id)
    assert codat_company["id"] == ready["codatCompanyId"]
    assert codat_company["name"] == "Acme Ltd"
    types = [e["detail-type"] for e in bus_events(company_id)]
    assert types == ["LinkReady", "CompanyReady"]
    company_ready = bus_events(company_id)[1]["detail"]
    assert company_ready["codatCompanyId"] == ready["codatCompanyId"]
    assert company_ready["companyData"]["suppliers"]["count"] > 0


def test_a_duplicate_start_is_the_same_onboarding(product, http):
    company_id = _company_id()
    first = http.post("/companies", json=_body(company_id))
    again = http.post("/companies", json=_body(company_id))
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    conflicting = http.post("/companies", json=_body(company_id, platformKey="qhyg"))
    assert conflicting.status_code == 409
    # Started directly under another name (or under the same one 90 days after it ended) once
    # the company waits for Link, the second execution ends at registration, naming the
    # onboarding under way; Codat not called. (While the first is still registering, it is a
    # conflict: unit tests, test_register_from_another_execution_is_a_conflict.)
    _waiting_for(http, company_id, "authorization")
    other = _start_directly(product, _body(company_id), name=f"other-{company_id}")
    ended = product.cloud.wait_for_execution(other)
    assert ended["status"] == "SUCCEEDED"
    registration = json.loads(ended["output"])["registration"]
    assert registration["startedEarlier"] is True
    assert registration["status"] == "PENDING_LINK"
    assert registration["onboardingExecutionArn"] == first.json()["executionArn"]
    assert "CreateCodatCompany" not in _states_entered(product, other)
    _authorize(product, http, company_id)
    # Started again once it finished (READY): the same answer, the onboarding that finished
    finished = http.post("/companies", json=_body(company_id))
    assert (finished.status_code, finished.json()) == (202, first.json())
    assert http.get(f"/companies/{company_id}").json()["status"] == "READY"
    assert len(_codat_companies(product, company_id)) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"platformKey": "sage"}, "platformKey"),
        ({"name": ""}, "name"),
        ({"companyId": "bad id!"}, "companyId"),
    ],
)
def test_bad_input_is_a_400_and_codat_is_never_called(product, http, changes, field):
    before = len(product.emulator.store.list_companies())
    answer = http.post("/companies", json=_body(_company_id(), **changes))
    assert answer.status_code == 400
    # The gateway's model refuses it before the function runs
    assert answer.json() == {"message": "Invalid request body"}
    # Started directly, the execution fails at registration with the field and the reason
    execution_arn = _start_directly(product, _body(_company_id(), **changes))
    failed = product.cloud.wait_for_execution(execution_arn)
    assert failed["status"] == "FAILED"
    assert field in failed["cause"]
    assert len(product.emulator.store.list_companies()) == before


def test_a_name_codat_would_refuse_is_normalized_or_refused_by_the_function(product, http):
    refused = http.post("/companies", json=_body(_company_id(), name="株式会社"))
    assert refused.status_code == 400
    assert "no character Codat accepts" in refused.json()["error"]["details"][0]["message"]
    company_id = _company_id()
    _start(http, company_id, name="Müller & Söhne (Berlin)")
    company = _waiting_for(http, company_id, "authorization")
    assert company["name"] == "Müller & Söhne (Berlin)"
    (codat_company,) = _codat_companies(product, company_id)
    assert codat_company["name"] == "Muller & Sohne Berlin"


# --- Link --------------------------------------------------------------------------------------


def test_a_user_who_cancels_in_link_ends_in_link_failed_and_a_relink_brings_them_back(
    product, http
):
    company_id = _company_id()
    execution_arn = _start(http, company_id)
    company = _waiting_for(http, company_id, "authorization")
    # When the user presses Cancel, Codat sends connection.failed (statusCode 403)
    assert _link(product, company, "cancel")["statusCode"] == 403
    cancelled = _until(http, company_id, lambda c: c["status"] == "LINK_FAILED")
    assert cancelled["lastError"]["code"] == "LinkFailed"
    assert cancelled["lastError"]["message"] == "User cancelled"
    assert product.cloud.wait_for_execution(execution_arn)["status"] == "SUCCEEDED"
    # Then the product can hand out a new Link, and this time the user authorizes
    assert http.post(f"/companies/{company_id}/relink").status_code == 202
    ready = _authorize(product, http, company_id)
    assert ready["connectionId"] != company["connectionId"]
    assert len(_codat_companies(product, company_id)) == 1


def test_a_slow_user_is_reconciled_once_per_interval_and_can_still_authorize(product, http):
    company_id = _company_id()
    execution_arn = _start_directly(product, {**_body(company_id), "timings": FAST})
    _waiting_for(http, company_id, "authorization")
    # Nothing arrives within the interval: the workflow reads the connection once, and waits on
    deadline = time.monotonic() + 30
    while "ReconcileAuthorization" not in _states_entered(product, execution_arn):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    company = _waiting_for(http, company_id, "authorization")
    assert company["status"] == "PENDING_LINK"
    # When the user finally authorizes, onboarding completes
    _authorize(product, http, company_id)
    assert product.cloud.wait_for_execution(execution_arn)["status"] == "SUCCEEDED"


def test_a_failed_authorization_ends_in_link_failed_with_the_reason(product, http, bus_events):
    company_id = _company_id()
    execution_arn = _start(http, company_id)
    company = _waiting_for(http, company_id, "authorization")
    _link(product, company, "fail", message="The user has no permission to connect Xero")
    failed = _until(http, company_id, lambda c: c["status"] == "LINK_FAILED")
    assert failed["lastError"]["code"] == "LinkFailed"
    assert failed["lastError"]["message"] == "The user has no permission to connect Xero"
    # Not an operator's problem: the execution succeeds (no alarm), the product is told
    assert product.cloud.wait_for_execution(execution_arn)["status"] == "SUCCEEDED"
    (event,) = [e for e in bus_events(company_id) if e["detail-type"] == "OnboardingFailed"]
    assert event["detail"]["status"] == "LINK_FAILED"


def test_a_link_nobody_uses_expires(product, http, bus_events):
    company_id = _company_id()
    timings = {**FAST, "linkExpirySeconds": 2}
    execution_arn = _start_directly(product, {**_body(company_id), "timings": timings})
    expired = _until(http, company_id, lambda c: c["status"] == "LINK_EXPIRED", timeout=60)
    assert expired["lastError"]["code"] == "LinkExpired"
    assert "not used within 2 s" in expired["lastError"]["message"]
    assert expired["linkUrl"] is None
    assert product.cloud.wait_for_execution(execution_arn)["status"] == "SUCCEEDED"
    states = _states_entered(product, execution_arn)
    # Codat is read once per (1 s) interval until the Link expires, not in a tight loop
    assert 1 <= states.count("ReconcileAuthorization") <= 3
    (event,) = [e for e in bus_events(company_id) if e["detail-type"] == "OnboardingFailed"]
    assert event["detail"]["status"] == "LINK_EXPIRED"


# --- webhooks early, twice, out of order -------------------------------------------------------


def test_webhooks_early_twice_and_out_of_order(product, http):
    company_id = _company_id()
    execution_arn = _start(http, company_id)
    company = _waiting_for(http, company_id, "authorization")
    # Given Codat delivering every webhook twice, each after the one generated next
    with webhook_options(product, duplicate=True, out_of_order=True):
        _link(product, company, "authorize")
        _until(http, company_id, lambda c: c["status"] == "READY")
    assert product.cloud.wait_for_execution(execution_arn)["status"] == "SUCCEEDED"
    # Then read.completed.initial came first: before connection.connected, so before its own wait
    # existed (it was kept on the company and settled that wait the moment it was armed)
    delivered = sorted(
        (d for d in _deliveries(product, company["codatCompanyId"]) if d["state"] == "delivered"),
        key=lambda d: d["attempts"][-1]["at"],
    )
    kinds = [d["eventType"] for d in delivered]
    assert kinds.index("read.completed.initial") < kinds.index("connection.connected")
    for event_type in ("connection.connected", "read.completed.initial"):
        assert kinds.count(event_type) == 2  # twice, same webhook-id
    # And each wait was resumed once
    states = _states_entered(product, execution_arn)
    assert states.count("RecordAuthorization") == 1
    assert states.count("WaitForInitialRead") == 1


# --- Codat failing while the company is created -------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "error", "status": 500},
        {"kind": "rate_limit", "retry_after_seconds": 1},
        {"kind": "applied_then_error"},  # Codat creates the company, then answers 500
    ],
    ids=["500", "429", "ambiguous"],
)
def test_codat_failing_on_create_company_leaves_exactly_one_company(product, http, fault):
    company_id = _company_id()
    product.emulator.faults.add_rule(route="/companies", method="POST", count=1, **fault)
    execution_arn = _start(http, company_id)
    ready = _authorize(product, http, company_id)
    (codat_company,) = _codat_companies(product, company_id)
    assert codat_company["id"] == ready["codatCompanyId"]
    assert product.emulator.faults.rules() == []  # the fault did fire
    states = _states_entered(product, execution_arn)
    if fault["kind"] != "rate_limit":
        # The step failed with a retryable error and Step Functions ran it again
        history = json.dumps(product.cloud.history(execution_arn), default=str)
        assert "CodatUnavailableError" in history
    if fault["kind"] == "rate_limit":
        # Waited for Retry-After in a Wait state, then ran the step again
        assert "CreateCodatCompanyHoldForRateLimit" in states
        hold = next(
            e
            for e in product.cloud.history(execution_arn)
            if e.get("stateEnteredEventDetails", {}).get("name")
            == "CreateCodatCompanyHoldForRateLimit"
        )
        waited = json.loads(hold["stateEnteredEventDetails"]["input"])
        assert waited["rateLimited"]["codat"]["retryAfterSeconds"] >= 1
        assert waited["rateLimited"]["codat"]["status"] in (429, None)


# --- the initial read ---------------------------------------------------------------------------


def test_a_needed_data_type_failing_the_initial_read_fails_onboarding(product, http, bus_events):
    company_id = _company_id()
    execution_arn = _start(http, company_id)
    company = _waiting_for(http, company_id, "authorization")
    # Codat's initial read cannot fetch the bills (AuthError)
    _link(product, company, "authorize", readErrors={"bills": "AuthError"})
    failed = _until(http, company_id, lambda c: c["status"] == "FAILED")
    assert failed["dataTypes"]["bills"] == "AuthError"
    assert failed["lastError"]["code"] == "RequiredDataTypeFailed"
    assert "bills (AuthError)" in failed["lastError"]["message"]
    assert product.cloud.wait_for_execution(execution_arn)["status"] == "FAILED"
    (event,) = [e for e in bus_events(company_id) if e["detail-type"] == "OnboardingFailed"]
    assert event["detail"]["code"] == "RequiredDataTypeFailed"


# --- after READY --------------------------------------------------------------------------------


def test_disconnect_and_relink_back_to_ready_with_the_same_codat_company(product, http):
    company_id = _company_id()
    _start(http, company_id)
    first_link = _waiting_for(http, company_id, "authorization")["linkUrl"]
    ready = _authorize(product, http, company_id)
    assert http.post(f"/companies/{company_id}/relink").status_code == 409  # READY: nothing to do
    # When the SMB disconnects the platform (connection.disconnected: NEEDS_RELINK)
    with product.emulator.http() as emulator:
        path = (
            f"/_emulator/companies/{ready['codatCompanyId']}/connections/"
            f"{ready['connectionId']}/deauthorize"
        )
        assert emulator.post(path).status_code == 200
    lost = _until(http, company_id, lambda c: c["status"] == "NEEDS_RELINK")
    assert lost["connectionStatus"] == "Deauthorized"
    # Then relink hands out a new Link, on a new connection
    relinked = http.post(f"/companies/{company_id}/relink")
    assert relinked.status_code == 202, relinked.text
    pending = _waiting_for(http, company_id, "authorization")
    assert pending["status"] == "PENDING_LINK"
    assert pending["connectionId"] != ready["connectionId"]
    assert pending["linkUrl"] not in (None, first_link)
    # And the same waits bring it back to READY, without a second Codat company
    back = _authorize(product, http, company_id)
    assert back["connectionId"] == pending["connectionId"]
    assert back["connectionStatus"] == "Linked"
    assert len(_codat_companies(product, company_id)) == 1
    execution = product.cloud.wait_for_execution(relinked.json()["executionArn"])
    assert execution["status"] == "SUCCEEDED"


def test_offboarding_unlinks_keeps_the_data_readable_and_is_idempotent(product, http):
    company_id = _company_id()
    _start(http, company_id)
    ready = _authorize(product, http, company_id)
    answer = http.delete(f"/companies/{company_id}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "OFFBOARDED"
    connection = product.emulator.store.get_connection(
        ready["codatCompanyId"], ready["connectionId"]
    )
    assert connection["status"] == "Unlinked"
    again = http.delete(f"/companies/{company_id}")
    assert again.status_code == 200
    company = http.get(f"/companies/{company_id}").json()
    assert company["status"] == "OFFBOARDED"
    assert company["dataTypes"] == ready["dataTypes"]
    # The product's copy of its books stays readable (as last synced)
    assert http.get(f"/companies/{company_id}/suppliers").status_code == 200
    assert http.post(f"/companies/{company_id}/relink").status_code == 409


def test_offboarding_while_waiting_for_the_user_stops_the_onboarding(product, http):
    company_id = _company_id()
    execution_arn = _start(http, company_id)
    _waiting_for(http, company_id, "authorization")
    assert http.delete(f"/companies/{company_id}").status_code == 200
    assert product.cloud.wait_for_execution(execution_arn)["status"] == "ABORTED"
    assert http.get(f"/companies/{company_id}").json()["status"] == "OFFBOARDED"


# --- bodies the API cannot parse ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/companies"),
        ("POST", "/companies/smb-x/relink"),
        ("GET", "/companies/smb-x"),
        ("DELETE", "/companies/smb-x"),
    ],
)
def test_unparseable_bodies_are_400_and_other_content_types_415_on_every_route(http, method, path):
    deep = "[" * 100_000 + "]" * 100_000
    as_json = http.request(method, path, content=deep, headers={"content-type": "application/json"})
    assert as_json.status_code == 400, as_json.text
    as_text = http.request(method, path, content=deep, headers={"content-type": "text/plain"})
    assert as_text.status_code == 415, as_text.text
