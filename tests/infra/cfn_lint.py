"""cfn-lint over synthesized templates: every error and warning is a finding (informational
matches are not reported by default). cfn-lint ships its resource specs; it needs no network."""

from __future__ import annotations

import json
from typing import Any

from cfnlint.api import lint


def findings(template: dict[str, Any], region: str = "us-east-1") -> list[str]:
    return [
        f"{match.rule.id} {match.message} ({'/'.join(str(p) for p in match.path)})"
        for match in lint(json.dumps(template), regions=[region])
    ]
