"""`make demo` is the project's main job: run it as a user would and hold it to its word."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_journey_succeeds_end_to_end():
    # Given the synthesized cdk.out (make test synthesizes before running pytest)
    assert (ROOT / "cdk.out" / "BillPay-dev-Service.template.json").exists(), "run `make synth`"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # When the demo runs, as `make demo` runs it
    result = subprocess.run(
        [sys.executable, "-m", "localcloud", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # Then every step of the journey happened, in order, and it says so
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    steps = [
        "1. POST",
        "202 accepted",
        "PENDING_LINK: codatCompanyId",
        "presses Authorize",
        "HTTP 200",
        "connection.connected",
        "read.completed.initial",
        "execution SUCCEEDED",
        '200 {"status": "READY"',
        "is READY",
    ]
    positions = [out.find(step) for step in steps]
    assert all(p >= 0 for p in positions), out
    assert positions == sorted(positions), out
