"""A subprocess-mode Lambda invocation: `python -m localcloud.lambda_bootstrap RESULT_FILE`.

Reads the event (JSON) on stdin and the context from LOCALCLOUD_CONTEXT, calls the handler named by
_HANDLER, and writes {"result": ...} or {"error": {...}} to RESULT. stdout and stderr stay the
function's own log output.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

from localcloud.lambda_context import LambdaContext, error_payload


def main(argv: list[str]) -> int:
    result_file = Path(argv[1])
    event = json.loads(sys.stdin.read() or "{}")
    context = LambdaContext(**json.loads(os.environ["LOCALCLOUD_CONTEXT"]))
    module_name, _, attribute = os.environ["_HANDLER"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
        outcome = {"result": handler(event, context)}
        serialized = json.dumps(outcome)
    except Exception as exc:
        serialized = json.dumps({"error": error_payload(exc)})
    result_file.write_text(serialized)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
