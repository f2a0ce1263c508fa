"""A deployed stage, found through its stacks' outputs (the names in infra/constants.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra import constants


@dataclass(frozen=True)
class Stage:
    name: str
    outputs: dict[str, str]

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise KeyError(f"stage {self.name!r} has no output {key!r}: is it deployed?")
        return self.outputs[key]


def load_stage(name: str, cloudformation: Any) -> Stage:
    outputs: dict[str, str] = {}
    for stack in (f"BillPay-{name}-State", f"BillPay-{name}-Service"):
        (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
        outputs.update({o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])})
    return Stage(name, outputs)


WEBHOOK_QUEUE = constants.OUTPUT_WEBHOOK_QUEUE_URL
WEBHOOK_DLQ = constants.OUTPUT_WEBHOOK_DLQ_URL
WEBHOOK_EVENTS_TABLE = constants.OUTPUT_WEBHOOK_EVENTS_TABLE
WEBHOOK_URL = constants.OUTPUT_WEBHOOK_URL
CODAT_API_KEY_SECRET = constants.OUTPUT_CODAT_API_KEY_SECRET_ARN
PAYMENTS_TABLE = constants.OUTPUT_PAYMENTS_TABLE
PAYMENT_STATE_MACHINE = constants.OUTPUT_PAYMENT_STATE_MACHINE_ARN
COMPANIES_TABLE = constants.OUTPUT_COMPANIES_TABLE
PAYABLES_TABLE = constants.OUTPUT_PAYABLES_TABLE
EVENT_BUS = constants.OUTPUT_EVENT_BUS_NAME
