"""CloudWatch metrics as Embedded Metric Format log lines: no API call, no dependency.

Lambda's log stream carries the line; CloudWatch turns it into a metric. The alarms in
infra/constructs/monitoring.py read these names from here.
"""

from __future__ import annotations

import json
import sys
import time

NAMESPACE = "BillPay"
DIMENSION = "Stage"


def emit(stage: str, *names: str) -> None:
    """Count 1 for each metric name, in one EMF line (dimension: the stage)."""
    if not names:
        return
    line = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in names],
                }
            ],
        },
        DIMENSION: stage,
        **dict.fromkeys(names, 1),
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
