"""The skeleton's smoke journey through the local API (`make demo`); later issues grow it.

Each step prints what it did; any unexpected answer stops the journey with a non-zero exit.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx

from localcloud.deploy import ClientFactory, Deployment

_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class JourneyFailed(RuntimeError):
    pass


def _expect(response: httpx.Response, status: int, step: str) -> Any:
    if response.status_code != status:
        raise JourneyFailed(
            f"{step}: expected HTTP {status}, got {response.status_code}: {response.text[:500]}"
        )
    return response.json()


def _wait_for_execution(clients: ClientFactory, execution_arn: str, timeout: float) -> Any:
    sfn = clients("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] in _TERMINAL:
            return description
        time.sleep(0.1)
    raise JourneyFailed(f"{execution_arn} did not finish within {timeout}s")


def run_journey(api_url: str, deployment: Deployment, clients: ClientFactory) -> int:
    company_id = f"demo-{secrets.token_hex(4)}"
    with httpx.Client(base_url=api_url, timeout=35) as http:
        try:
            print(f"1. POST {api_url}/companies  companyId={company_id}", flush=True)
            started = _expect(
                http.post("/companies", json={"companyId": company_id, "name": "Demo Ltd"}),
                202,
                "start onboarding",
            )
            print(f"   202 accepted, execution {started['executionArn']}", flush=True)
            print("2. onboarding state machine runs", flush=True)
            execution = _wait_for_execution(clients, started["executionArn"], timeout=60)
            if execution["status"] != "SUCCEEDED":
                raise JourneyFailed(f"onboarding ended {execution['status']}: {execution}")
            print("   SUCCEEDED", flush=True)
            print(f"3. GET {api_url}/companies/{company_id}", flush=True)
            company = _expect(http.get(f"/companies/{company_id}"), 200, "read company")
            print(f"   200 {company}", flush=True)
        except JourneyFailed as exc:
            print(f"journey failed: {exc}", flush=True)
            return 1
    print(f"journey complete on {len(deployment.stacks)} stacks", flush=True)
    return 0
