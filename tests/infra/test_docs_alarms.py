"""docs/operations.md says what every alarm of the stack means and what to do about it."""

from __future__ import annotations

import re
from pathlib import Path

from aws_cdk import aws_cloudwatch as cloudwatch

ROOT = Path(__file__).resolve().parents[2]


def test_every_alarm_is_in_the_operations_guide(dev):
    # Given every alarm the service stack defines, by its construct id (in the alarm's name)
    alarms = {
        node.node.id
        for node in dev.service_stack.node.find_all()
        if isinstance(node, cloudwatch.Alarm)
    }
    assert len(alarms) == len(dev.service.find_resources("AWS::CloudWatch::Alarm")) >= 30
    # Then each one is named, in code, in the operations guide's alarm section
    guide = (ROOT / "docs" / "operations.md").read_text()
    section = guide[guide.index("## Alarms") :]
    documented = set(re.findall(r"`(\w+)`", section))
    assert sorted(alarms - documented) == []
