"""Only functions that call Codat import its SDK: it costs 0.5-0.8 s of every cold start."""

import subprocess
import sys
from pathlib import Path

import pytest

from infra import constants

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"
SDK = "codat_sync_for_payables"


def _loads_sdk(module: str) -> bool:
    probe = f"import sys, {module}; print({SDK!r} in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(FUNCTIONS)},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip() == "True"


def _module(handler: str) -> str:
    return handler.rpartition(".")[0]


@pytest.mark.parametrize(
    "handler",
    [
        constants.API_HANDLER,
        constants.REGISTER_COMPANY_HANDLER,
        constants.WAIT_FOR_SIGNAL_HANDLER,
        constants.RECORD_AUTHORIZATION_HANDLER,
        constants.RECORD_INITIAL_READ_HANDLER,
        constants.MARK_READY_HANDLER,
        constants.RECORD_FAILURE_HANDLER,
    ],
)
def test_handlers_that_do_not_call_codat_do_not_import_its_sdk(handler):
    assert not _loads_sdk(_module(handler))


def test_the_codat_steps_do_import_it():
    # The check above can fail: this module loads the SDK, through the one adapter.
    assert _loads_sdk(_module(constants.CREATE_CODAT_COMPANY_HANDLER))
