"""The whole Bill Pay journey (`make demo`), on the local cloud with the Codat emulator.

What the product, its SMB user and the SMB's accounting software do, end to end (docs/demo.md):

1. the product backend starts onboarding for a demo SMB (POST /companies);
2. the SMB authorizes in Link (the emulator's page, its form submitted as a browser submits it);
3. Codat's signed webhooks arrive (verified by the ingress, applied by the processor), onboarding
   reaches READY, and the product copies the SMB's books (the initial load);
4. the product lists the open bills and pays one in full and one in part (and polls each payment
   to PAID);
5. the same payment request is sent again: the same payment, nothing new in Codat;
6. the accounting software changes bills on its own (one edited, one paid outside the product),
   Codat reads the books again, `read.completed` reaches the product and its bills show it.

Every action goes through HTTP: the product's API, the Link page, the emulator's control routes
(what the accounting software does on its own) and its fault injection. What the journey checks
and counts beyond the API (one payment in Codat, the cost) it reads from the emulator's store,
the state machines' histories and the local Lambda runner. Each step asserts its outcome: any
unexpected answer stops the journey with a non-zero exit.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urljoin

import httpx

from billpay.payments.models import execution_name
from codat_emulator.seed import DEFAULT_BILLS
from codat_emulator.store import PLATFORMS
from codat_emulator.webhooks import dispatcher_for
from localcloud import lambda_runner
from localcloud.product import ProductCloud, running_product

_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
_PAYMENT_ENDS = {"PAID", "REJECTED", "FAILED"}
CENT = Decimal("0.01")
PAYMENT_ROUTE = "/companies/*/connections/*/payables/bills/*/payment"
BILLS_ROUTE = "/companies/*/connections/*/payables/bills"
# Output ids of the stacks (infra/constants.py).
OUTPUT_PAYABLES_SYNC_STATE_MACHINE_ARN = "PayablesSyncStateMachineArn"
OUTPUT_PAYMENT_STATE_MACHINE_ARN = "PaymentStateMachineArn"
EXIT_INTERRUPTED = 130
DEMO_LOG = Path("build") / "demo.log"


class JourneyFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoOptions:
    platform_key: str = "gbol"
    bills: int = DEFAULT_BILLS
    faults: bool = False

    @property
    def platform(self) -> str:
        return PLATFORMS[self.platform_key]


# --- the Link page, as a browser uses it -----------------------------------------------------------


class _Forms(HTMLParser):
    """The forms of a page: (method, action, fields from its inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("method", "get").upper(), values.get("action", ""), {}))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1][2][values["name"]] = values.get("value", "")


def press(http: httpx.Client, page_url: str, action: str) -> httpx.Response:
    """Open `page_url` and submit the form whose `action` field is `action`, as a browser does."""
    page = http.get(page_url)
    if page.status_code != 200:
        raise JourneyFailed(f"Link page {page_url}: HTTP {page.status_code}")
    parser = _Forms()
    parser.feed(page.text)
    for method, target, fields in parser.forms:
        if fields.get("action") == action:
            return http.request(
                method,
                urljoin(page_url, target),
                data=fields,  # application/x-www-form-urlencoded, as a browser posts it
                follow_redirects=True,
            )
    raise JourneyFailed(f"Link page {page_url} has no {action!r} button")


# --- the timeline ----------------------------------------------------------------------------------


class Timeline:
    """Steps, what they found and the webhooks, as they happen: plain lines (not a TTY)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.started = time.monotonic()
        self._lock = threading.RLock()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _line(self, text: str) -> None:
        with self._lock:
            print(f"[{self.elapsed():6.2f}s] {text}", file=self.out, flush=True)

    def begin(self, number: int, title: str) -> None:
        self._line(f"{number}. {title}")

    def end(self, number: int, seconds: float, ok: bool) -> None:
        self._line(f"   {'done' if ok else 'FAILED'}: step {number} in {seconds:.2f} s")

    def note(self, text: str) -> None:
        self._line(f"   {text}")

    def webhook(self, event_type: str, status: int | None, ms: float) -> None:
        self._line(f"   webhook {event_type} -> {status} ({ms:.0f} ms)")

    def summary(self, result: JourneyResult) -> None:
        with self._lock:
            for line in summary_lines(result):
                print(line, file=self.out, flush=True)

    def close(self) -> None:
        pass

    @contextlib.contextmanager
    def step(self, number: int, title: str) -> Iterator[None]:
        began = time.monotonic()
        self.begin(number, title)
        try:
            yield
        except BaseException:
            self.end(number, time.monotonic() - began, ok=False)
            raise
        self.end(number, time.monotonic() - began, ok=True)


class _RunningStep:
    """A step's row while it runs: a spinner and the time so far, as of each refresh."""

    def __init__(self, number: int, title: str) -> None:
        from rich.spinner import Spinner

        self.title = f"{number}. {title}"
        self.began = time.monotonic()
        self.spinner = Spinner("dots")

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        self.spinner.update(text=f"[bold]{self.title}[/]  {time.monotonic() - self.began:.1f} s")
        yield self.spinner


class RichTimeline(Timeline):
    """The same timeline, live in a terminal: rows printed as they happen (so a long run scrolls
    as any output does), under them the running step with a spinner and its time so far; the
    summary as tables."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        super().__init__(out)
        self.console = Console(file=out)
        self._running: _RunningStep | None = None
        # The handlers' output goes to the demo's log, not above the live display.
        self._live = Live(
            console=self.console,
            refresh_per_second=12,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def _add(self, markup: str) -> None:
        from rich.text import Text

        with self._lock:
            self._live.console.print(Text.from_markup(f"[dim]{self.elapsed():6.2f}s[/] {markup}"))

    def begin(self, number: int, title: str) -> None:
        with self._lock:
            self._running = _RunningStep(number, title)
            self._add(f"[bold]{self._running.title}[/]")
            self._live.update(self._running, refresh=True)

    def end(self, number: int, seconds: float, ok: bool) -> None:
        with self._lock:
            self._running = None
            self._live.update("", refresh=True)
            mark = "[green]✔ done[/]" if ok else "[red]✘ FAILED[/]"
            self._add(f"  {mark}: step {number} [dim]in {seconds:.2f} s[/]")

    def note(self, text: str) -> None:
        from rich.markup import escape

        self._add(f"    {escape(text)}")

    def webhook(self, event_type: str, status: int | None, ms: float) -> None:
        colour = "cyan" if status == 200 else "yellow"
        self._add(f"    [{colour}]⇢ webhook {event_type} → {status}[/] [dim]({ms:.0f} ms)[/]")

    def summary(self, result: JourneyResult) -> None:
        self.close()
        for table in summary_tables(result):
            self.console.print(table)

    def close(self) -> None:
        with self._lock:
            if self._live.is_started:
                self._live.stop()


class WebhookWatcher:
    """Shows each delivery attempt of Codat's webhooks for one company, as the emulator logs it."""

    def __init__(self, product: ProductCloud, timeline: Timeline) -> None:
        self._dispatcher = dispatcher_for(product.emulator.store)
        self._timeline = timeline
        self._company: str | None = None
        self._seen: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-webhooks", daemon=True)
        self.delivered: Counter[str] = Counter()

    def follow(self, codat_company_id: str) -> None:
        self._company = codat_company_id

    def __enter__(self) -> WebhookWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.poll()
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.poll()

    def poll(self) -> None:
        if self._company is None:
            return
        for delivery in self._dispatcher.deliveries():
            if delivery["companyId"] != self._company:
                continue
            for n, attempt in enumerate(delivery["attempts"]):
                if (delivery["id"], n) in self._seen:
                    continue
                self._seen.add((delivery["id"], n))
                if attempt["statusCode"] == 200:
                    self.delivered[delivery["eventType"]] += 1
                self._timeline.webhook(
                    delivery["eventType"], attempt["statusCode"], attempt["durationMs"]
                )


# --- what the journey found ------------------------------------------------------------------------


@dataclass
class Cost:
    codat_calls: int = 0
    state_transitions: int = 0
    executions: int = 0
    lambda_invocations: int = 0
    by_function: dict[str, int] = field(default_factory=dict)


@dataclass
class JourneyResult:
    options: DemoOptions
    company_id: str
    codat_company_id: str = ""
    connection_id: str = ""
    company: dict[str, Any] = field(default_factory=dict)
    bills_total: int = 0
    # bill id -> (role, the product's bill before, after)
    bills: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    payments: list[dict[str, Any]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    seconds: float = 0.0


def _bill_line(bill: dict[str, Any]) -> str:
    return f"{bill['amountDue']:>10} {bill['currency']} due, {bill['status']}"


def summary_lines(result: JourneyResult) -> list[str]:
    cost = result.cost
    lines = [
        "summary",
        f"  company {result.company_id}: {result.company.get('status')} on "
        f"{result.options.platform} (Codat company {result.codat_company_id}), "
        f"{result.bills_total} bills",
        "  bills (amount due, status)    before -> after",
    ]
    for bill_id, (role, before, after) in result.bills.items():
        lines.append(f"    {role:<26} {bill_id[:8]}  {_bill_line(before)} -> {_bill_line(after)}")
    lines.append("  payments")
    for payment in result.payments:
        history = " > ".join(change["status"] for change in payment["history"])
        lines.append(
            f"    {payment['paymentId']:<18} {payment['amount']:>10} {payment['status']:<5} "
            f"attempts {payment['attempts']}  {history}"
        )
    for fault in result.faults:
        lines.append(f"  fault: {fault}")
    lines.append(
        f"  cost: {cost.codat_calls} Codat calls, {cost.state_transitions} state transitions in "
        f"{cost.executions} executions, {cost.lambda_invocations} Lambda invocations"
    )
    lines.append(f"journey complete in {result.seconds:.1f} s: every step did what it should")
    return lines


def summary_tables(result: JourneyResult) -> list[Any]:
    from rich.table import Table

    cost = result.cost
    company = Table(title="Company", show_header=False)
    company.add_row("product id", result.company_id)
    company.add_row("status", str(result.company.get("status")))
    company.add_row("platform", result.options.platform)
    company.add_row("Codat company", result.codat_company_id)
    company.add_row("bills in the books", str(result.bills_total))
    bills = Table(title="Bills: the product's copy before and after")
    for column in ("what happened", "bill", "due before", "status", "due after", "status"):
        bills.add_column(column, justify="right" if column.startswith("due") else "left")
    for bill_id, (role, before, after) in result.bills.items():
        bills.add_row(
            role,
            bill_id[:8],
            f"{before['amountDue']} {before['currency']}",
            before["status"],
            f"{after['amountDue']} {after['currency']}",
            after["status"],
        )
    payments = Table(title="Payments")
    for column in ("paymentId", "amount", "status", "attempts", "history"):
        payments.add_column(column)
    for payment in result.payments:
        history = " > ".join(change["status"] for change in payment["history"])
        payments.add_row(
            payment["paymentId"],
            payment["amount"],
            payment["status"],
            str(payment["attempts"]),
            history,
        )
    costs = Table(title="The journey's cost", show_header=False)
    costs.add_row("Codat API calls", str(cost.codat_calls))
    costs.add_row(
        "Step Functions state transitions", f"{cost.state_transitions} ({cost.executions} runs)"
    )
    costs.add_row("Lambda invocations", str(cost.lambda_invocations))
    for fault in result.faults:
        costs.add_row("fault", fault)
    tables: list[Any] = [company, bills, payments, costs]
    tables.append(
        f"[bold green]journey complete in {result.seconds:.1f} s[/]: every step did what it should"
    )
    return tables


# --- the journey -----------------------------------------------------------------------------------


def _expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise JourneyFailed(
            f"{what}: expected HTTP {status}, got {response.status_code}: {response.text[:500]}"
        )
    return response.json()


def until(
    read: Callable[[], Any],
    done: Callable[[Any], bool],
    what: str,
    timeout: float = 60,
    every: float = 0.1,
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        current = read()
        if done(current):
            return current
        if time.monotonic() > deadline:
            raise JourneyFailed(f"{what} did not happen within {timeout:.0f} s: {current}")
        time.sleep(every)


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise JourneyFailed(what)


class Journey:
    """One run of the journey for a new demo SMB, on a running product."""

    def __init__(
        self, product: ProductCloud, options: DemoOptions, timeline: Timeline | None = None
    ) -> None:
        self.product = product
        self.options = options
        self.timeline = timeline or Timeline()
        self.result = JourneyResult(options, company_id=f"demo-{secrets.token_hex(4)}")
        self.api = httpx.Client(base_url=product.cloud.api_url, timeout=35)
        self.browser = httpx.Client(timeout=30)
        self.codat = product.emulator.http(timeout=30)  # the accounting software, via the emulator
        self.sfn = product.cloud.client("stepfunctions")
        self.store = product.emulator.store

    # -- reading through the product's API ----------------------------------------------------

    @property
    def company_path(self) -> str:
        return f"/companies/{self.result.company_id}"

    def company(self) -> dict[str, Any]:
        answer = self.api.get(self.company_path)
        if answer.status_code == 404:  # not registered yet: the workflow has just started
            return {"status": None, "waitingFor": None}
        return dict(_expect(answer, 200, "read the company"))

    def bills(self, **params: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query = {**params, "limit": "100", **({"pageToken": token} if token else {})}
            page = _expect(self.api.get(f"{self.company_path}/bills", params=query), 200, "bills")
            found += page["items"]
            token = page.get("nextPageToken")
            if token is None:
                return found

    def bill(self, bill_id: str) -> dict[str, Any]:
        return dict(_expect(self.api.get(f"{self.company_path}/bills/{bill_id}"), 200, "a bill"))

    def payment(self, bill_id: str, payment_id: str) -> dict[str, Any]:
        path = f"{self.company_path}/bills/{bill_id}/payments/{payment_id}"
        return dict(_expect(self.api.get(path), 200, "a payment"))

    # -- the accounting software (the emulator's control routes) -----------------------------

    def platform(self, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
        base = (
            f"/_emulator/companies/{self.result.codat_company_id}"
            f"/connections/{self.result.connection_id}"
        )
        answer = self.codat.request(method, f"{base}/{path}", json=body or {})
        if not answer.is_success:
            raise JourneyFailed(f"the accounting software refused {path}: {answer.text[:300]}")
        return answer.json()

    def books(self) -> int:
        summary = _expect(
            self.codat.get(f"/_emulator/companies/{self.result.codat_company_id}"), 200, "books"
        )
        (connection,) = summary["connections"]
        return sum(connection["bills"].values())

    # -- the steps -------------------------------------------------------------------------------

    def run(self) -> JourneyResult:
        began = time.monotonic()
        invocations = lambda_runner.invocation_counts()
        client_calls = self._client_calls()
        with WebhookWatcher(self.product, self.timeline) as watcher:
            if self.options.faults:
                self._arm_faults()
            self.start_onboarding(watcher)
            self.authorize()
            self.reach_ready(watcher)
            paid = self.pay_two_bills()
            self.pay_again(paid[0])
            self.change_in_the_accounting_software(paid)
        self.result.company = self.company()
        if self.options.faults:
            self._faults_did_their_part()
        self._count(invocations, client_calls)
        self.result.seconds = time.monotonic() - began
        return self.result

    def start_onboarding(self, watcher: WebhookWatcher) -> None:
        result, options = self.result, self.options
        with self.timeline.step(
            1, f"The product starts onboarding {result.company_id} on {options.platform}"
        ):
            body = {
                "companyId": result.company_id,
                "name": "Demo Ltd",
                "platformKey": options.platform_key,
            }
            started = _expect(self.api.post("/companies", json=body), 202, "start onboarding")
            self.onboarding_arn = started["executionArn"]
            name = self.onboarding_arn.rsplit(":", 1)[-1]
            self.timeline.note(f"POST /companies -> 202, onboarding workflow {name} started")
            pending = until(
                self.company, lambda c: c["waitingFor"] == "authorization", "the Link URL"
            )
            result.codat_company_id = pending["codatCompanyId"]
            result.connection_id = pending["connectionId"]
            self.link_url = pending["linkUrl"]
            watcher.follow(result.codat_company_id)
            self.timeline.note(
                f"{pending['status']}: Codat company {result.codat_company_id}, Link {self.link_url}"
            )
            # The SMB's books in its accounting software: what Link's first read will find.
            _expect(
                self.codat.put(
                    f"/_emulator/companies/{result.codat_company_id}/dataset",
                    json={"bills": options.bills},
                ),
                200,
                "the SMB's books",
            )

    def authorize(self) -> None:
        with self.timeline.step(2, "The SMB authorizes in Link (the page's form, as a browser)"):
            page = press(self.browser, self.link_url, "authorize")
            _check(page.status_code == 200, f"Authorize answered HTTP {page.status_code}")
            self.timeline.note(f"pressed Authorize: HTTP {page.status_code}")

    def reach_ready(self, watcher: WebhookWatcher) -> None:
        with self.timeline.step(3, "Codat's signed webhooks arrive; onboarding reaches READY"):
            ready = until(self.company, lambda c: c["status"] in ("READY", "FAILED"), "READY")
            execution = until(
                lambda: self.sfn.describe_execution(executionArn=self.onboarding_arn),
                lambda e: e["status"] in _TERMINAL,
                "the end of onboarding",
            )
            if ready["status"] != "READY" or execution["status"] != "SUCCEEDED":
                raise JourneyFailed(f"onboarding ended {ready['status']}: {ready['lastError']}")
            watcher.poll()
            for event_type in ("connection.connected", "read.completed.initial"):
                _check(watcher.delivered[event_type] > 0, f"no {event_type} webhook delivered")
            self.timeline.note(
                f"READY: connection {ready['connectionStatus']}, workflow {execution['status']}"
            )
            total = self.books()
            self.result.bills_total = total
            copied = until(  # every page read is an API call: not too often
                self.bills,
                lambda b: len(b) == total,
                f"the initial load of {total} bills",
                every=0.3,
            )
            statuses = Counter(b["status"] for b in copied)
            self.timeline.note(
                f"the product's copy of the books: {total} bills "
                f"({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))})"
            )

    def pay_two_bills(self) -> list[tuple[str, str, dict[str, Any]]]:
        with self.timeline.step(4, "The product lists open bills, pays one in full, one in part"):
            open_bills = self.bills(status="Open")
            _check(all(b["status"] == "Open" for b in open_bills), "a bill not Open in the listing")
            accounts = _expect(
                self.api.get(f"{self.company_path}/payment-accounts"), 200, "payment accounts"
            )["items"]
            self.timeline.note(
                f"GET /bills?status=Open -> {len(open_bills)} bills; "
                f"{len(accounts)} accounts to pay from"
            )
            currency, account = self._account_for(open_bills, accounts)
            payable = [
                b for b in open_bills if b["currency"] == currency and Decimal(b["amountDue"]) > 1
            ]
            _check(len(payable) >= 4, f"fewer than 4 open {currency} bills to pay and change")
            self.targets = payable[:4]
            full, part = payable[0], payable[1]
            amount_part = (Decimal(part["amountDue"]) / 2).quantize(CENT, ROUND_HALF_UP)
            paid = []
            for bill, payment_id, amount, how in (
                (full, "demo-pay-full", Decimal(full["amountDue"]), "in full"),
                (part, "demo-pay-part", amount_part, "in part"),
            ):
                body = {
                    "paymentId": payment_id,
                    "amount": str(amount),
                    "date": date.today().isoformat(),
                    "accountId": account["id"],
                }
                path = f"{self.company_path}/bills/{bill['id']}/payments"
                accepted = _expect(self.api.post(path, json=body), 202, f"pay {how}")
                self.timeline.note(
                    f"POST .../bills/{bill['id'][:8]}/payments {amount} {currency} ({how}) -> "
                    f"202 {accepted['status']}"
                )
                done = until(
                    functools.partial(self.payment, bill["id"], payment_id),
                    lambda v: v["status"] in _PAYMENT_ENDS,
                    f"the end of payment {payment_id}",
                )
                _check(done["status"] == "PAID", f"{payment_id} ended {done['status']}: {done}")
                codat_bill = self.store.get_bill(
                    self.result.codat_company_id, self.result.connection_id, bill["id"]
                )
                expected_due = Decimal(bill["amountDue"]) - amount
                _check(
                    Decimal(str(codat_bill["amountDue"])) == expected_due,
                    f"Codat's bill shows {codat_bill['amountDue']} due, not {expected_due}",
                )
                listed = self.bill(bill["id"])["payments"]
                _check(
                    [(p["paymentId"], p["status"]) for p in listed] == [(payment_id, "PAID")],
                    f"the product's bill lists {listed}",
                )
                history = " > ".join(c["status"] for c in done["history"])
                self.timeline.note(
                    f"GET .../payments/{payment_id} -> PAID ({history}); in the accounting "
                    f"software the bill is {codat_bill['status']}, "
                    f"{Decimal(str(codat_bill['amountDue'])):.2f} due"
                )
                paid.append((bill["id"], payment_id, body))
                self.result.payments.append(done)
            return paid

    def pay_again(self, paid: tuple[str, str, dict[str, Any]]) -> None:
        bill_id, payment_id, body = paid
        with self.timeline.step(5, "The same payment request again changes nothing"):
            before = self.payment(bill_id, payment_id)
            path = f"{self.company_path}/bills/{bill_id}/payments"
            again = _expect(self.api.post(path, json=body), 202, "the same payment again")
            _check(
                (again["paymentId"], again["status"], again["codatPaymentId"])
                == (payment_id, "PAID", before["codatPaymentId"]),
                f"the same request answered another payment: {again}",
            )
            made = self.store.list_payments(
                self.result.codat_company_id, self.result.connection_id, bill_id
            )
            _check(len(made) == 1, f"Codat holds {len(made)} payments of the bill")
            _check(self._executions_of(payment_id) == 1, "a second payment workflow started")
            codat_id = again["codatPaymentId"] or "found on the bill"
            self.timeline.note(
                f"POST again -> 202, the same payment ({payment_id}, PAID, Codat payment "
                f"{codat_id}); Codat holds 1 payment of the bill, 1 workflow"
            )

    def change_in_the_accounting_software(
        self, paid: list[tuple[str, str, dict[str, Any]]]
    ) -> None:
        full, part, edited, outside = self.targets
        with self.timeline.step(6, "The accounting software changes bills; read.completed"):
            new_total = (Decimal(edited["totalAmount"]) + 100).quantize(CENT)
            new_due = (date.fromisoformat(edited["dueDate"]) + timedelta(days=30)).isoformat()
            self.platform(
                f"bills/{edited['id']}", {"amount": str(new_total), "dueDate": new_due}, "PATCH"
            )
            self.timeline.note(
                f"in the accounting software: bill {edited['id'][:8]} edited to {new_total}, "
                f"due {new_due}; bill {outside['id'][:8]} paid outside the product"
            )
            self.platform(f"bills/{outside['id']}/pay")
            read = self.platform("read")
            self.timeline.note(f"Codat reads the books again: {read['eventType']} {read['status']}")
            expected = {
                full["id"]: ("Paid", Decimal("0")),
                part["id"]: (
                    "PartiallyPaid",
                    Decimal(part["amountDue"]) - Decimal(paid[1][2]["amount"]),
                ),
                edited["id"]: ("Open", new_total),
                outside["id"]: ("Paid", Decimal("0")),
            }

            def current() -> dict[str, dict[str, Any]]:
                return {bill_id: self.bill(bill_id) for bill_id in expected}

            def shows_it(bills: dict[str, dict[str, Any]]) -> bool:
                return (
                    all(
                        (bills[i]["status"], Decimal(bills[i]["amountDue"])) == want
                        for i, want in expected.items()
                    )
                    and bills[edited["id"]]["dueDate"] == new_due
                )

            after = until(current, shows_it, "the changes in the product's bills")
            roles = {
                full["id"]: "paid in full (product)",
                part["id"]: "paid in part (product)",
                edited["id"]: "edited in the software",
                outside["id"]: "paid outside the product",
            }
            before = {b["id"]: b for b in self.targets}
            for bill_id, role in roles.items():
                self.result.bills[bill_id] = (role, before[bill_id], after[bill_id])
                self.timeline.note(
                    f"GET .../bills/{bill_id[:8]}: {_bill_line(after[bill_id])}  ({role})"
                )

    # -- faults ----------------------------------------------------------------------------------

    def _arm_faults(self) -> None:
        rules = [
            # Three: the adapter tries a read that failed fast twice more in the Lambda
            # (billpay.codat.client), so the third 503 fails the step for Step Functions to retry.
            {"kind": "error", "status": 503, "route": BILLS_ROUTE, "method": "GET", "count": 3},
            {"kind": "rate_limit", "route": PAYMENT_ROUTE, "method": "POST", "count": 1,
             "retry_after_seconds": 1},
            {"kind": "applied_then_error", "route": PAYMENT_ROUTE, "method": "POST", "count": 1},
        ]  # fmt: skip
        for rule in rules:
            _expect(self.codat.post("/_emulator/faults", json=rule), 201, "arm a fault")
        self.timeline.note(
            "faults armed in Codat: 503 on the first three bills reads, a 429 and then an "
            "applied payment answered 500 on the first payment"
        )

    def _faults_did_their_part(self) -> None:
        left = _expect(self.codat.get("/_emulator/faults"), 200, "faults")["rules"]
        _check(left == [], f"faults not met on the way: {left}")
        histories = self._histories()
        retried = sum(
            1
            for events in histories.values()
            for e in events
            if e["type"].endswith("Failed") and e["type"] != "ExecutionFailed"
        )
        waits = sum(
            1
            for events in histories.values()
            for e in events
            if e["type"] == "WaitStateEntered"
            and e["stateEnteredEventDetails"]["name"] == "WaitForRateLimit"
        )
        full = self.result.payments[0]
        statuses = [c["status"] for c in full["history"]]
        _check(retried >= 1, "no step was retried after Codat's 503")
        _check(waits >= 1, "no wait for Codat's rate limit")
        _check("UNKNOWN" in statuses and statuses[-1] == "PAID", f"not reconciled: {statuses}")
        _check(full["attempts"] == 1, "the ambiguous payment was sent again under a new key")
        self.result.faults = [
            "Codat 503 on three bills reads: tried twice more in the Lambda, then the step "
            f"failed and Step Functions retried it ({retried} retries)",
            f"Codat 429 on the payment: waited for Retry-After ({waits} waits), same key",
            "payment applied but answered 500: UNKNOWN, reconciled from the bill to PAID, "
            f"1 payment in Codat ({full['reason']})",
        ]

    # -- the cost --------------------------------------------------------------------------------

    def _executions(self) -> list[str]:
        cloud = self.product.cloud
        arns = [self.onboarding_arn]
        sync = cloud.output(OUTPUT_PAYABLES_SYNC_STATE_MACHINE_ARN)
        prefix = f"sync-{self.result.company_id}-"
        for page in self.sfn.get_paginator("list_executions").paginate(stateMachineArn=sync):
            arns += [e["executionArn"] for e in page["executions"] if e["name"].startswith(prefix)]
        machine = cloud.output(OUTPUT_PAYMENT_STATE_MACHINE_ARN)
        head, _, name = machine.rpartition(":stateMachine:")
        for payment in self.result.payments:
            own = execution_name(self.result.company_id, payment["paymentId"])
            arns.append(f"{head}:execution:{name}:{own}")
        return arns

    def _executions_of(self, payment_id: str) -> int:
        machine = self.product.cloud.output(OUTPUT_PAYMENT_STATE_MACHINE_ARN)
        own = execution_name(self.result.company_id, payment_id)
        listed = self.sfn.list_executions(stateMachineArn=machine)["executions"]
        return sum(1 for e in listed if e["name"] == own)

    def _histories(self) -> dict[str, list[dict[str, Any]]]:
        for arn in self._executions():  # every run over before its history is counted
            until(
                functools.partial(self.sfn.describe_execution, executionArn=arn),
                lambda e: e["status"] in _TERMINAL,
                f"the end of {arn}",
            )
        return {arn: self.product.cloud.history(arn) for arn in self._executions()}

    def _client_calls(self) -> int:
        state = self.store.quota_state("")
        used: int = state.limit - state.remaining
        return used

    def _count(self, invocations: dict[str, int], client_calls: int) -> None:
        histories = self._histories()
        company = self.store.quota_state(self.result.codat_company_id)
        now = lambda_runner.invocation_counts()
        by_function = {
            name: count - invocations.get(name, 0)
            for name, count in now.items()
            if count > invocations.get(name, 0)
        }
        self.result.cost = Cost(
            codat_calls=company.limit - company.remaining + self._client_calls() - client_calls,
            state_transitions=sum(
                1
                for events in histories.values()
                for e in events
                if e["type"].endswith("StateEntered")
            ),
            executions=len(histories),
            lambda_invocations=sum(by_function.values()),
            by_function=by_function,
        )

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _account_for(
        bills: list[dict[str, Any]], accounts: list[dict[str, Any]]
    ) -> tuple[str, dict[str, Any]]:
        """The currency with the most open bills that an active account can pay, and the account."""
        by_currency = Counter(b["currency"] for b in bills)
        for currency, _ in by_currency.most_common():
            for account in accounts:
                if account.get("status") == "Active" and account.get("currency") == currency:
                    return currency, account
        raise JourneyFailed(f"no active account pays any of {sorted(by_currency)}")

    def close(self) -> None:
        for client in (self.api, self.browser, self.codat):
            client.close()


# --- make demo -------------------------------------------------------------------------------------


def run_journey(
    product: ProductCloud, options: DemoOptions, timeline: Timeline | None = None
) -> JourneyResult:
    """The journey for a new demo SMB on `product`; JourneyFailed if a step did not do its job."""
    journey = Journey(product, options, timeline)
    try:
        return journey.run()
    finally:
        journey.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_demo(cdk_out: Path, options: DemoOptions | None = None, log: Path = DEMO_LOG) -> int:
    """`python -m localcloud demo`: start everything, play the journey, stop everything."""
    options = options or DemoOptions()
    terminal = sys.stdout
    # The handlers run in this process and write their logs and metrics to stdout, as on Lambda:
    # they go to `log`, so the terminal shows the journey (`make dev` shows everything).
    logging.getLogger("localcloud.gateway").setLevel(logging.ERROR)  # access log, SigV4 notes
    log.parent.mkdir(parents=True, exist_ok=True)
    # SIGTERM stops the demo as Ctrl-C does: everything it started is stopped on the way out.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    timeline: Timeline | None = None
    try:
        with log.open("w") as functions_log, contextlib.redirect_stdout(functions_log):
            timeline = RichTimeline(terminal) if terminal.isatty() else Timeline(terminal)
            timeline.note("starting the local cloud (cdk.out on moto) and the Codat emulator")
            with running_product(cdk_out) as product:
                timeline.note(
                    f"local API {product.cloud.api_url}, Codat emulator "
                    f"{product.emulator.base_url}; the functions' logs go to {log}"
                )
                result = run_journey(product, options, timeline)
                timeline.summary(result)
        return 0
    except JourneyFailed as exc:
        if timeline is not None:
            timeline.close()
        print(f"journey failed: {exc} (the functions' logs: {log})", file=terminal, flush=True)
        return 1
    except KeyboardInterrupt:
        if timeline is not None:
            timeline.close()
        print(
            "interrupted: the local cloud and the emulator are stopped", file=terminal, flush=True
        )
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
