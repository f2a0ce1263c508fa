"""Step Functions: starting runs of the payables sync state machine."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from billpay.bills.sync import SyncRequest

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


class StepFunctionsSyncStarter:
    def __init__(self, client: SFNClient, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def start(self, request: SyncRequest) -> bool:
        try:
            self._client.start_execution(
                stateMachineArn=self._arn,
                name=request.run_id,
                input=json.dumps(request.model_dump(mode="json", by_alias=True)),
            )
        except self._client.exceptions.ExecutionAlreadyExists:
            return False
        return True
