"""No hidden lazy imports in the shipped code: an import inside a function moves its cost from the
cold start to the first request that runs it, where nobody measures it (docs/benchmarks.md). Which
function imports what is held by tests/infra/test_function_imports.py."""

import ast
from pathlib import Path

import billpay

PACKAGE = Path(billpay.__file__).parent


def _imports_inside_functions(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            found += [
                f"line {sub.lineno}: {ast.unparse(sub)}"
                for sub in ast.walk(node)
                if isinstance(sub, ast.Import | ast.ImportFrom)
            ]
    return found


def test_every_import_of_the_shipped_code_is_at_module_level():
    lazy = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if (found := _imports_inside_functions(path.read_text()))
    }
    assert lazy == {}


def test_the_check_finds_an_import_inside_a_function():
    source = "import json\n\ndef handler():\n    from billpay.codat.client import codat_client\n"
    assert _imports_inside_functions(source) == [
        "line 4: from billpay.codat.client import codat_client"
    ]
