"""Each function imports only what it needs, at module level: what a cold start pays for.

Every Python function the synthesized service stack declares is imported in a fresh interpreter
(this venv's, with only `functions/` added), and the modules it loaded are held to the rules below.
Imports are measured in docs/benchmarks.md (`make bench`).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra import constants
from infra.constructs.functions import RUNTIME

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
# The Codat SDK costs more than everything else a handler imports together.
CODAT_SDK = "codat_sync_for_payables"
# The product API's router; nothing else routes HTTP requests (a webhook ingress does not need it).
EVENT_HANDLER = "aws_lambda_powertools.event_handler"
ROUTERS = {constants.API_HANDLER, constants.API_CODAT_HANDLER}
# Never in a function: boto3 drags in s3transfer and multiprocessing (botocore is enough); and the
# local cloud, the emulator, moto and the test tools are not in the layer.
NEVER = ("boto3", "s3transfer", "localcloud", "codat_emulator", "moto", "pytest")


@functools.cache
def _imported_by(module: str) -> set[str] | str:
    """The modules importing `module` loads, or why it could not be imported."""
    script = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=FUNCTIONS,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(FUNCTIONS)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return result.stderr.strip().splitlines()[-1]
    return set(json.loads(result.stdout))


def _functions(dev) -> dict[str, dict]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in dev.service.find_resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Runtime") == RUNTIME.name
    }


@pytest.fixture(scope="module")
def imported(dev) -> dict[str, tuple[dict, set[str] | str]]:
    return {
        logical_id: (props, _imported_by(props["Handler"].rpartition(".")[0]))
        for logical_id, props in _functions(dev).items()
    }


@pytest.fixture(scope="module")
def imports(imported) -> dict[str, tuple[dict, set[str]]]:
    """The functions whose handler imports (the others fail the test below)."""
    return {
        logical_id: (props, modules)
        for logical_id, (props, modules) in imported.items()
        if isinstance(modules, set)
    }


def test_every_declared_handler_imports(imported):
    handlers = {props["Handler"] for props, _ in imported.values()}
    assert {constants.API_HANDLER, constants.REGISTER_COMPANY_HANDLER} <= handlers
    failing = {
        f"{logical_id} ({props['Handler']})": modules
        for logical_id, (props, modules) in imported.items()
        if isinstance(modules, str)
    }
    assert failing == {}


def test_the_codat_sdk_only_in_functions_that_call_codat(imports):
    for logical_id, (props, modules) in imports.items():
        calls_codat = constants.ENV_CODAT_API_KEY_SECRET_ARN in props["Environment"]["Variables"]
        if not calls_codat:
            assert CODAT_SDK not in modules, f"{logical_id} ({props['Handler']}) imports the SDK"


def test_a_function_that_calls_codat_imports_its_sdk_at_module_level(imports):
    """No hidden lazy import: a function given Codat's key loads the SDK with its handler's
    module, so the cold start pays for it, not the first request that calls Codat."""
    calling = {
        logical_id: props["Handler"]
        for logical_id, (props, modules) in imports.items()
        if constants.ENV_CODAT_API_KEY_SECRET_ARN in props["Environment"]["Variables"]
    }
    assert constants.API_CODAT_HANDLER in calling.values()
    lazy = {
        f"{logical_id} ({handler})"
        for logical_id, handler in calling.items()
        if CODAT_SDK not in imports[logical_id][1]
    }
    assert lazy == set()


def test_powertools_event_handler_only_in_the_product_api(imports):
    for logical_id, (props, modules) in imports.items():
        if props["Handler"] not in ROUTERS:
            assert EVENT_HANDLER not in modules, f"{logical_id} ({props['Handler']})"


def test_nothing_a_function_never_needs(imports):
    for logical_id, (props, modules) in imports.items():
        loaded = sorted(m for m in modules if m.partition(".")[0] in NEVER)
        assert loaded == [], f"{logical_id} ({props['Handler']})"


def test_the_check_sees_what_a_handler_imports(imports):
    """The rules above look at real import graphs: the API handler's includes its router."""
    (api_modules,) = [m for p, m in imports.values() if p["Handler"] == constants.API_HANDLER]
    assert EVENT_HANDLER in api_modules
    assert "botocore.client" in api_modules


def test_the_webhook_ingress_imports_only_the_standard_library_and_botocore(imports):
    """Codat waits 15 s: the ingress verifies with hmac and parses with json, so none of the
    packages a webhook receiver usually pulls in is loaded (docs/benchmarks.md has its figures)."""
    (modules,) = [
        m for props, m in imports.values() if props["Handler"] == constants.WEBHOOK_INGRESS_HANDLER
    ]
    heavy = ("pydantic", "pydantic_core", "aws_lambda_powertools", "svix", "standardwebhooks")
    assert sorted(m for m in modules if m.partition(".")[0] in (*heavy, CODAT_SDK)) == []
    assert "botocore.client" in modules  # the check sees its real imports
