"""Every operation the Bill Pay SDK can call has a route in the emulator, and the contract tests
call every one of them through the SDK."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import codat_sync_for_payables.api as payables_api
from starlette.routing import Match

from codat_emulator.app import create_app
from codat_emulator.config import EmulatorConfig

_OPERATION = re.compile(r"method='(?P<method>[A-Z]+)',\s*resource_path='(?P<path>[^']+)'")
_SDK_CALL = re.compile(r"sdk\.(\w+)\.(\w+)\(")
_GROUPS = {
    "bank_accounts": "bank_accounts",
    "bill_payments": "bill_payments",
    "bills": "bills",
    "companies": "companies",
    "company_information": "company_information",
    "connections": "connections",
    "suppliers": "suppliers",
}


def sdk_operations() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for name in _GROUPS:
        source = inspect.getsource(importlib.import_module(f"{payables_api.__name__}.{name}"))
        found |= {(m["method"], m["path"]) for m in _OPERATION.finditer(source)}
    return found


def test_the_sdk_has_the_25_operations_of_the_sync_bill_pay_api():
    assert len(sdk_operations()) == 25


def test_every_sdk_operation_has_a_route():
    app = create_app(EmulatorConfig(api_key="x" * 16))
    missing = []
    for method, path in sorted(sdk_operations()):
        concrete = re.sub(r"\{(\w+)\}", r"sample-\1", path)
        scope = {"type": "http", "method": method, "path": concrete, "root_path": ""}
        if not any(route.matches(scope)[0] is Match.FULL for route in app.routes):
            missing.append(f"{method} {path}")
    assert missing == []


def test_the_contract_tests_call_every_sdk_method():
    public_methods = set()
    for module_name, attribute in _GROUPS.items():
        module = importlib.import_module(f"{payables_api.__name__}.{module_name}")
        group = getattr(module, "".join(part.title() for part in module_name.split("_")))
        public_methods |= {
            f"{attribute}.{name}"
            for name, _ in inspect.getmembers(group, inspect.isfunction)
            if not name.startswith("_")
            and not name.endswith(("_async", "_with_http_info", "_without_preload_content"))
        }
    called = set()
    for test_file in Path(__file__).parent.glob("test_contract_*.py"):
        called |= {
            f"{group}.{method}" for group, method in _SDK_CALL.findall(test_file.read_text())
        }
    assert public_methods - called == set()
