"""The Codat adapter through the real SDK over an in-memory httpx transport (no sockets):
what it sends, how Codat's answers map to the workflow's errors, the throttle, the API key."""

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from billpay.codat.client import ApiKeyCache, CodatClient, idempotency_key, sdk_for
from billpay.codat.errors import (
    RATE_LIMITED_ERROR,
    RETRIED_ERRORS,
    CodatError,
    CodatNotFoundError,
    CodatRateLimitedError,
    CodatRejectedError,
    CodatStillSyncingError,
    CodatUnavailableError,
    CodatUnexpectedResponseError,
    codat_error_detail,
)
from billpay.codat.throttle import Throttle

from .fakes import InMemoryThrottle

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BASE = "https://codat.test"


def _company(n: int = 1, created: str = "2026-11-25T12:00:00Z", tags=None) -> dict:
    return {
        "id": f"co-{n}",
        "name": "Acme Ltd",
        "redirect": f"{BASE}/link/co-{n}",
        "created": created,
        "tags": tags or {"billpayCompanyId": "smb-1"},
    }


def _connection(status: str = "PendingAuth") -> dict:
    return {
        "id": "conn-1",
        "integrationId": "i-1",
        "integrationKey": "gbol",
        "sourceId": "s-1",
        "sourceType": "Accounting",
        "platformName": "Xero",
        "linkUrl": f"{BASE}/link/co-1/connections/conn-1",
        "status": status,
        "created": "2026-11-25T12:00:00Z",
    }


def _codat_error(status: int, message: str = "nope", correlation: str = "corr-1") -> dict:
    return {
        "statusCode": status,
        "service": "PublicApi",
        "error": message,
        "correlationId": correlation,
        "canBeRetried": "Unknown",
        "detailedErrorCode": 0,
    }


class Codat:
    """A scripted Codat: answers queued per (method, path), every request recorded."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answers: dict[tuple[str, str], list[httpx.Response | Exception]] = {}

    def on(self, method: str, path: str, *answers: httpx.Response | Exception) -> None:
        self.answers.setdefault((method, path), []).extend(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queued = self.answers.get((request.method, request.url.path))
        if not queued:
            return httpx.Response(599, json={"unexpected": request.url.path})
        answer = queued.pop(0) if len(queued) > 1 else queued[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def codat():
    return Codat()


@pytest.fixture
def throttle():
    return InMemoryThrottle()


@pytest.fixture
def slept():
    return []


@pytest.fixture
def client(codat, throttle, slept):
    sdk = sdk_for(BASE, "test-key", http=httpx.Client(transport=httpx.MockTransport(codat)))
    return CodatClient(sdk, throttle, clock=lambda: T0, sleep=slept.append)


def test_every_call_carries_codats_basic_auth(client, codat):
    codat.on("POST", "/companies", httpx.Response(200, json=_company()))
    client.create_company("Acme Ltd", {"billpayCompanyId": "smb-1"})
    (request,) = codat.requests
    assert request.headers["authorization"] == "Basic dGVzdC1rZXk="  # base64("test-key")
    assert json.loads(request.content) == {
        "name": "Acme Ltd",
        "tags": {"billpayCompanyId": "smb-1"},
    }


def test_a_company_is_found_by_its_tag_and_the_oldest_wins(client, codat):
    page = {
        "pageNumber": 1,
        "pageSize": 100,
        "totalResults": 2,
        "_links": {"self": {"href": "/companies"}, "current": {"href": "/companies"}},
        "results": [
            _company(2, created="2026-11-25T12:05:00Z"),
            _company(1, created="2026-11-25T12:00:00Z"),
        ],
    }
    codat.on("GET", "/companies", httpx.Response(200, json=page))
    found = client.find_company_by_tag("billpayCompanyId", "smb-1")
    assert found is not None
    assert found.id == "co-1"
    assert codat.requests[0].url.params["tags"] == "billpayCompanyId=smb-1"


def test_a_connection_is_created_for_the_platform_and_mapped_to_our_view(client, codat):
    codat.on("POST", "/companies/co-1/connections", httpx.Response(200, json=_connection()))
    connection = client.create_connection("co-1", "gbol")
    assert json.loads(codat.requests[0].content) == {"platformKey": "gbol"}
    assert (connection.id, connection.status, connection.platform_key) == (
        "conn-1",
        "PendingAuth",
        "gbol",
    )
    assert connection.link_url.endswith("/connections/conn-1")


def test_unlinking_patches_the_status(client, codat):
    path = "/companies/co-1/connections/conn-1"
    codat.on("PATCH", path, httpx.Response(200, json=_connection("Unlinked")))
    assert client.unlink_connection("co-1", "conn-1").status == "Unlinked"
    assert json.loads(codat.requests[0].content) == {"status": "Unlinked"}


@pytest.mark.parametrize(
    ("method", "status", "error"),
    [
        ("POST", 500, CodatUnavailableError),
        ("POST", 503, CodatUnavailableError),
        ("POST", 409, CodatUnavailableError),  # the same write still in flight at Codat
        ("POST", 400, CodatRejectedError),
        ("POST", 401, CodatRejectedError),
        ("POST", 402, CodatRejectedError),
        ("GET", 404, CodatNotFoundError),
        ("GET", 409, CodatStillSyncingError),
        ("GET", 422, CodatRejectedError),  # undocumented: the SDK raises SDKError
    ],
)
def test_codat_answers_map_to_the_errors_the_workflow_matches(client, codat, method, status, error):
    if method == "POST":
        codat.on(method, "/companies", httpx.Response(status, json=_codat_error(status)))
        call = lambda: client.create_company("Acme Ltd", {})  # noqa: E731
    else:
        path = "/companies/co-1/connections/conn-1"
        codat.on(method, path, httpx.Response(status, json=_codat_error(status)))
        call = lambda: client.get_connection("co-1", "conn-1")  # noqa: E731
    with pytest.raises(error) as caught:
        call()
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.correlation_id == "corr-1"
    # The SDK's own retries are off: a POST is never re-sent by the client.
    assert len(codat.requests) == 1


def test_the_error_message_is_json_the_workflow_and_failure_step_read(client, codat):
    codat.on("POST", "/companies", httpx.Response(400, json=_codat_error(400, "Bad name", "c-9")))
    with pytest.raises(CodatRejectedError) as caught:
        client.create_company("Acme Ltd", {})
    detail = codat_error_detail(str(caught.value))
    assert detail == {
        "message": "create company: Codat answered 400: Bad name",
        "status": 400,
        "correlationId": "c-9",
        "retryAfterSeconds": None,
    }
    assert codat_error_detail("not json") is None


def test_the_names_the_state_machine_matches_are_the_classes_names():
    assert set(RETRIED_ERRORS) == {"CodatUnavailableError", "CodatStillSyncingError"}
    assert RATE_LIMITED_ERROR == "CodatRateLimitedError"
    assert issubclass(CodatNotFoundError, CodatRejectedError)


@pytest.mark.parametrize(
    "fault",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server hung up"),
    ],
)
def test_no_answer_at_all_is_unavailable(client, codat, fault):
    codat.on("POST", "/companies", fault)
    with pytest.raises(CodatUnavailableError):
        client.create_company("Acme Ltd", {})
    assert len(codat.requests) == 1


CONNECTION_PATH = "/companies/co-1/connections/conn-1"


def test_a_read_that_fails_fast_is_tried_again_in_the_lambda_briefly(client, codat, slept):
    codat.on(
        "GET",
        CONNECTION_PATH,
        httpx.Response(503, json=_codat_error(503)),
        httpx.Response(200, json=_connection("Linked")),
    )
    assert client.get_connection("co-1", "conn-1").status == "Linked"
    assert len(codat.requests) == 2
    assert slept == [0.25]


def test_a_read_still_failing_goes_to_the_workflow_after_two_more_tries(client, codat, slept):
    codat.on("GET", CONNECTION_PATH, httpx.Response(500, json=_codat_error(500)))
    with pytest.raises(CodatUnavailableError) as caught:
        client.get_connection("co-1", "conn-1")
    assert caught.value.correlation_id == "corr-1"
    assert len(codat.requests) == 3
    assert slept == [0.25, 0.5]


@pytest.mark.parametrize(
    ("method", "path", "answer"),
    [
        ("POST", "/companies", httpx.Response(500, json=_codat_error(500))),  # a write
        ("GET", CONNECTION_PATH, httpx.ReadTimeout("read timed out")),  # slow: the workflow's
        ("GET", CONNECTION_PATH, httpx.Response(429, json=_codat_error(429))),  # the throttle's
        ("GET", CONNECTION_PATH, httpx.Response(409, json=_codat_error(409))),  # still syncing
    ],
)
def test_writes_timeouts_rate_limits_and_syncs_are_not_tried_again_in_the_lambda(
    client, codat, slept, method, path, answer
):
    codat.on(method, path, answer)
    call = (
        (lambda: client.create_company("Acme Ltd", {}))
        if method == "POST"
        else (lambda: client.get_connection("co-1", "conn-1"))
    )
    with pytest.raises(CodatError):
        call()
    assert len(codat.requests) == 1
    assert slept == []


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds} s past the budget")


def test_in_lambda_retries_stop_at_their_time_budget(codat, throttle):
    codat.on("GET", CONNECTION_PATH, httpx.Response(502, json=_codat_error(502)))
    ticks = iter([0.0, 4.9])  # the first try took 4.9 s: no time for another
    sdk = sdk_for(BASE, "test-key", http=httpx.Client(transport=httpx.MockTransport(codat)))
    client = CodatClient(sdk, throttle, clock=lambda: T0, sleep=_no_sleep, monotonic=ticks.__next__)
    with pytest.raises(CodatUnavailableError):
        client.get_connection("co-1", "conn-1")
    assert len(codat.requests) == 1


def test_an_answer_the_sdk_cannot_read_is_permanent(client, codat):
    codat.on(
        "GET",
        "/companies/co-1/connections/conn-1",
        httpx.Response(200, json=_connection("SomeNewStatus")),
    )
    with pytest.raises(CodatUnexpectedResponseError):
        client.get_connection("co-1", "conn-1")


def test_a_429_holds_the_throttle_for_its_retry_after(client, codat, throttle):
    codat.on(
        "POST",
        "/companies",
        httpx.Response(429, json=_codat_error(429), headers={"Retry-After": "30"}),
    )
    with pytest.raises(CodatRateLimitedError) as caught:
        client.create_company("Acme Ltd", {})
    assert caught.value.retry_after_seconds == 30
    assert throttle.held is not None
    assert throttle.held.until == T0 + timedelta(seconds=30)
    assert throttle.held.reason == "429"


def test_a_429_without_retry_after_still_holds_everyone_back(client, codat, throttle):
    codat.on("GET", "/companies", httpx.Response(429, json=_codat_error(429)))
    with pytest.raises(CodatRateLimitedError) as caught:
        client.find_company_by_tag("billpayCompanyId", "smb-1")
    assert caught.value.retry_after_seconds == 60
    assert throttle.held is not None


def test_while_the_throttle_holds_codat_is_not_called(client, codat, throttle):
    throttle.hold(
        Throttle(until=T0 + timedelta(seconds=90.5), reason="client.rateLimit.reached", set_at=T0)
    )
    with pytest.raises(CodatRateLimitedError) as caught:
        client.create_company("Acme Ltd", {})
    assert caught.value.retry_after_seconds == 91
    assert codat.requests == []


def test_an_expired_throttle_lets_calls_through(client, codat, throttle):
    throttle.hold(Throttle(until=T0 - timedelta(seconds=1), reason="429", set_at=T0))
    codat.on("POST", "/companies", httpx.Response(200, json=_company()))
    assert client.create_company("Acme Ltd", {}).id == "co-1"


def test_the_books_are_read_once_codat_stops_answering_409(client, codat):
    path = "/companies/co-1/connections/conn-1/payables/suppliers"
    codat.on(
        "GET",
        path,
        httpx.Response(409, json=_codat_error(409, "The data set has not been requested.")),
        httpx.Response(200, json={"results": [], "pagination": {}}),
    )
    assert client.has_read_data("co-1", "conn-1") is False
    assert client.has_read_data("co-1", "conn-1") is True


def test_the_company_data_is_the_first_page_of_each_listing(client, codat):
    prefix = "/companies/co-1/connections/conn-1/payables"
    codat.on(
        "GET",
        f"{prefix}/suppliers",
        httpx.Response(200, json={"results": [], "pagination": {"continuationToken": "t"}}),
    )
    codat.on("GET", f"{prefix}/bills", httpx.Response(200, json={"results": []}))
    codat.on(
        "GET",
        f"{prefix}/mappingOptions/payments",
        httpx.Response(200, json={"bankAccounts": [], "pagination": {}}),
    )
    data = client.read_company_data("co-1", "conn-1")
    assert (data.suppliers.count, data.suppliers.more) == (0, True)
    assert (data.open_bills.more, data.payment_accounts.more) == (False, False)


def test_the_api_key_is_read_again_only_after_its_ttl():
    reads = []
    now = [T0]
    cache = ApiKeyCache(
        lambda: reads.append(1) or f"key-{len(reads)}",
        ttl=timedelta(minutes=5),
        clock=lambda: now[0],
    )
    assert cache.get() == "key-1"
    now[0] = T0 + timedelta(minutes=4)
    assert cache.get() == "key-1"
    now[0] = T0 + timedelta(minutes=5)
    assert cache.get() == "key-2"


def test_an_idempotency_key_is_a_guid_derived_from_the_intent():
    key = idempotency_key("pay:bill-1:attempt-1")
    assert key == idempotency_key("pay:bill-1:attempt-1")
    assert key != idempotency_key("pay:bill-1:attempt-2")
    assert len(key) == 36


def test_every_codat_error_is_one_of_the_two_families():
    from billpay.codat.errors import CodatPermanentError, CodatRetryableError

    for error in (
        CodatRateLimitedError,
        CodatUnavailableError,
        CodatStillSyncingError,
        CodatRejectedError,
        CodatNotFoundError,
        CodatUnexpectedResponseError,
    ):
        assert issubclass(error, CodatError)
        assert issubclass(error, CodatRetryableError) != issubclass(error, CodatPermanentError)
