"""`make dev` as a person uses it: one `python -m localcloud dev --onboard NAME` (free ports, waits
time-scaled) for the module; it prints the URLs and the Link page of the pending onboarding, the
Link page is opened in headless Chromium and authorized, and the onboarding reaches READY.

Fails, never skips, without Chromium: `make test` installs it (`make browser-deps`)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from localcloud.onboardings import link_url_in
from tests.dev_process import DevProcess
from tests.emulator.test_browser_link import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
ONBOARD = "Browser & Co"
# Generous for a loaded 2-core CI machine; the start takes ~15 s on an idle one.
START_TIMEOUT = 180


@pytest.fixture(scope="module")
def dev() -> Iterator[DevProcess]:
    assert (ROOT / "cdk.out" / "BillPay-dev-Service.template.json").exists(), "run `make synth`"
    process = DevProcess(
        "--cdk-out",
        ROOT / "cdk.out",
        "--api-port",
        "0",
        "--moto-port",
        "0",
        "--onboard",
        ONBOARD,
        env={"LOCALCLOUD_TIME_SCALE": "0.01"},
    )
    try:
        process.read_until("Ctrl-C stops it.", timeout=START_TIMEOUT)
        yield process
        # Then Ctrl-C stops everything it started, and it says so.
        assert process.interrupt() == 0, process.stderr
        process.assert_stopped_cleanly()
        # dev-1 was left waiting for its Link: its execution is stopped, not left to fail.
        assert re.search(r"^stopped [1-9]\d* running workflow execution", process.stdout, re.M)
    finally:
        process.kill()


def _printed_url(dev: DevProcess, label: str) -> str:
    match = re.search(rf"{label}:\s+(http://127\.0\.0\.1:\d+)", dev.stdout)
    assert match, f"no {label} URL in:\n{dev.stdout}"
    return match.group(1)


def _started_company(dev: DevProcess) -> str:
    line = dev.wait_for_line(
        lambda text: text.startswith("started onboarding ") and f"({ONBOARD})" in text,
        "the --onboard company",
        timeout=5,
    )
    return line.split()[2]


def _link_page(dev: DevProcess, company_id: str) -> str:
    line = dev.wait_for_line(
        lambda text: link_url_in(text, company_id) is not None,
        f"the Link page of {company_id}",
        timeout=60,
    )
    url = link_url_in(line, company_id)
    assert url is not None
    return url


def _company_until(api_url: str, company_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    company: dict[str, Any] = {}
    with httpx.Client(base_url=api_url, timeout=35) as http:
        while company.get("status") != status:
            assert time.monotonic() < deadline, company
            time.sleep(0.2)
            answer = http.get(f"/companies/{company_id}")
            company = answer.json() if answer.status_code == 200 else {}
    return company


def test_dev_runs_a_codat_emulator_the_product_calls_instead_of_codat(dev):
    emulator_url = _printed_url(dev, "Codat emulator")
    api_url = _printed_url(dev, "local API")
    assert "its signed webhooks go to http://127.0.0.1:" in dev.stdout
    # When the product starts an onboarding through the local API
    body = {"companyId": "dev-1", "name": "Dev Ltd", "platformKey": "gbol"}
    assert httpx.post(f"{api_url}/companies", json=body, timeout=35).status_code == 202
    # Then it creates the company and connection in the emulator, and `make dev` prints the
    # Link page to open, the one the API hands out
    company = _company_until(api_url, "dev-1", "PENDING_LINK")
    assert company["linkUrl"].startswith(emulator_url + "/link/")
    assert _link_page(dev, "dev-1") == company["linkUrl"]


@pytest.mark.browser
def test_authorize_in_a_browser_on_the_printed_link_page_makes_the_company_ready(dev):
    api_url = _printed_url(dev, "local API")
    company_id = _started_company(dev)
    link = _link_page(dev, company_id)
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: run `make browser-deps`"
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(link)
            assert "Xero" in page.inner_text("h1")
            page.get_by_role("button", name="Authorize access to Xero").click()
            page.wait_for_selector("text=Connected")
        finally:
            browser.close()
    # The webhooks resume the workflow: READY through the product API, and printed by `make dev`.
    company = _company_until(api_url, company_id, "READY")
    assert company["connectionStatus"] == "Linked"
    dev.wait_for_line(
        lambda text: text.startswith(f"onboarding {company_id} ({ONBOARD}): READY"),
        f"{company_id} READY",
        timeout=10,
    )
    # CompanyReady reaches the payables sync once, within seconds (EventBridge's delivery does
    # not wait on the publisher, which holds the in-process runner: docs/local-cloud.md).
    requested = '"message":"payables sync requested"'
    dev.wait_for_line(
        lambda text: requested in text and f"sync-{company_id}-" in text,
        f"the payables sync of {company_id}",
        timeout=25,
    )
    assert sum(requested in line and company_id in line for line in dev.stdout.splitlines()) == 1
