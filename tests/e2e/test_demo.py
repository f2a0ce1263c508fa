"""`make demo` is the project's main job: run it as a user would and hold it to its word.

The options' journeys run in tests/e2e/test_journey.py on a shared product (cheaper than another
run of the whole command); here: the default run, its options as the command line takes them,
and Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud.cli import _parser

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def test_the_demo_journey_succeeds_end_to_end(cdk_out, tmp_path):
    # When the demo runs, as `make demo` runs it (stdout is not a TTY: plain lines)
    result = subprocess.run(
        [sys.executable, "-m", "localcloud", "demo", "--cdk-out", str(cdk_out)],
        cwd=tmp_path,  # its log goes to ./build/demo.log
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # Then every step of the journey happened, in order, and it says so
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    steps = [
        "1. The product starts onboarding demo-",
        "on Xero",
        "POST /companies -> 202",
        "PENDING_LINK: Codat company",
        "2. The SMB authorizes in Link",
        "pressed Authorize: HTTP 200",
        "3. Codat's signed webhooks arrive; onboarding reaches READY",
        "READY: connection Linked, workflow SUCCEEDED",
        "the product's copy of the books: 60 bills",
        "4. The product lists open bills, pays one in full, one in part",
        "GET /bills?status=Open ->",
        "(in full) -> 202 PENDING",
        "GET .../payments/demo-pay-full -> PAID (PENDING > SUBMITTED > PAID)",
        "the bill is Paid, 0.00 due",
        "(in part) -> 202 PENDING",
        "GET .../payments/demo-pay-part -> PAID",
        "the bill is PartiallyPaid",
        "5. The same payment request again changes nothing",
        "POST again -> 202, the same payment (demo-pay-full, PAID",
        "Codat holds 1 payment of the bill, 1 workflow",
        "6. The accounting software changes bills; read.completed",
        "paid outside the product",
        "Codat reads the books again: read.completed Complete",
        "webhook read.completed -> 200",
        "Paid  (paid in full (product))",
        "PartiallyPaid  (paid in part (product))",
        "Open  (edited in the software)",
        "Paid  (paid outside the product)",
        "summary",
        ": READY on Xero",
        "cost: ",
        "journey complete in",
    ]
    positions = [out.find(step) for step in steps]
    missing = [step for step, at in zip(steps, positions, strict=True) if at < 0]
    assert not missing, out
    assert positions == sorted(positions), out
    # each of the six steps ended done, with its duration; the webhooks showed up between them
    assert len(re.findall(r"done: step \d in \d+\.\d\d s", out)) == 6, out
    for webhook in ("connection.connected", "read.completed.initial"):
        assert f"webhook {webhook} -> 200" in out
    calls, transitions, executions, invocations = map(
        int,
        re.search(
            r"cost: (\d+) Codat calls, (\d+) state transitions in (\d+) executions, "
            r"(\d+) Lambda invocations",
            out,
        ).groups(),
    )
    assert executions == 5  # onboarding, the initial load, the read's sync, two payments
    assert calls > 0
    assert transitions > executions
    assert invocations > executions
    # the handlers' logs went to the demo's log, not between the steps
    assert '"level"' not in out
    assert (tmp_path / "build" / "demo.log").stat().st_size > 0


def test_ctrl_c_stops_the_demo_and_everything_it_started(cdk_out, tmp_path):
    demo = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "demo", "--cdk-out", str(cdk_out)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: whatever it started is in it
    )
    seen: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            seen.append(line)
            if "POST /companies -> 202" in line:  # the cloud, the emulator and onboarding running
                break
        ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", "".join(seen))[:2]]
        assert len(ports) == 2, seen
        # When the user presses Ctrl-C
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=30)[0]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    # Then it says so, exits 130, and nothing it started is left: no process, no port
    assert demo.returncode == 130, "".join(seen) + rest
    assert "interrupted: the local cloud and the emulator are stopped" in rest
    with pytest.raises(ProcessLookupError):
        os.killpg(demo.pid, 0)
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still listening"


def test_the_demos_options_on_the_command_line():
    args = _parser().parse_args(
        ["demo", "--platform", "QuickBooks Online", "--bills", "150", "--faults"]
    )
    assert (args.platform, args.bills, args.faults) == ("qhyg", 150, True)
    defaults = _parser().parse_args(["demo"])
    assert (defaults.platform, defaults.bills, defaults.faults) == ("gbol", 60, False)
    assert _parser().parse_args(["demo", "--platform", "fbrh"]).platform == "fbrh"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--platform", "Sage 50"], "is not a platform the emulator knows: gbol (Xero)"),
        (["--bills", "3"], "give a number of bills from 10 to 100000"),
        (["--bills", "many"], "give a number of bills from 10 to 100000"),
    ],
)
def test_a_bad_option_is_refused_with_what_it_takes(argv, words, capsys):
    with pytest.raises(SystemExit) as stopped:
        _parser().parse_args(["demo", *argv])
    assert stopped.value.code == 2
    assert words in capsys.readouterr().err


def test_help_lists_the_options():
    result = subprocess.run(
        [sys.executable, "-m", "localcloud", "demo", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for option in ("--platform", "--bills", "--faults", "--cdk-out"):
        assert option in result.stdout


MAKE_DEMO_WITH_OPTIONS = 'make demo DEMO_ARGS="--platform qhyg --bills 150 --faults"'


def test_make_demo_runs_the_demo_with_demo_args():
    # `make demo` is `python -m localcloud demo $(DEMO_ARGS)` (after synth): the command the tests
    # here run, and the options test_journey.py plays
    dry_run = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-n",
            "demo",
            "DEMO_ARGS=--platform qhyg --bills 150 --faults",
        ],
        cwd=ROOT,
        # as from a shell: not the settings of a `make test` this may run under
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = dry_run.stdout.splitlines()
    assert lines[-1] == ".venv/bin/python -m localcloud demo --platform qhyg --bills 150 --faults"
    assert any("app.py" in line for line in lines[:-1])  # synthesized first


def test_every_command_in_the_demo_doc_is_one_these_tests_run():
    doc = (ROOT / "docs" / "demo.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", doc, re.DOTALL)
    commands = {line.strip() for block in blocks for line in block.splitlines() if line.strip()}
    assert commands == {
        "make demo",  # test_the_demo_journey_succeeds_end_to_end, test_make_demo_runs_…
        MAKE_DEMO_WITH_OPTIONS,  # test_journey.py's options, test_make_demo_runs_…
        ".venv/bin/python -m localcloud demo --help",  # test_help_lists_the_options
    }
