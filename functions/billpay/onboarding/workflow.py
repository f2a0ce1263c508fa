"""Step Functions: starting and reading onboarding executions, and resuming parked task tokens."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from billpay.onboarding.ports import Execution

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


class StepFunctionsWorkflow:
    def __init__(self, client: SFNClient, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any]) -> Execution | None:
        try:
            answer = self._client.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(payload)
            )
        except self._client.exceptions.ExecutionAlreadyExists:
            return None
        return Execution(arn=answer["executionArn"], input=payload, status="RUNNING")

    def describe(self, name: str) -> Execution:
        answer = self._client.describe_execution(executionArn=self.execution_arn(name))
        return Execution(
            arn=answer["executionArn"],
            input=json.loads(answer.get("input", "{}")),
            status=answer["status"],
        )

    def stop(self, execution_arn: str, cause: str) -> bool:
        try:
            running = (
                self._client.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"
            )
            if running:
                self._client.stop_execution(executionArn=execution_arn, cause=cause)
        except self._client.exceptions.ExecutionDoesNotExist:
            return False
        return running

    def execution_arn(self, name: str) -> str:
        # arn:aws:states:region:account:stateMachine:NAME -> ...:execution:NAME:execution-name
        prefix, _, machine = self._arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"


class StepFunctionsTasks:
    """Implements `billpay.companies.ports.TaskResumer` with SendTaskSuccess."""

    def __init__(self, client: SFNClient) -> None:
        self._client = client

    def resume(self, token: str, output: dict[str, Any]) -> bool:
        errors = self._client.exceptions
        try:
            self._client.send_task_success(taskToken=token, output=json.dumps(output))
        except (errors.TaskDoesNotExist, errors.TaskTimedOut, errors.InvalidToken):
            # The execution stopped waiting (timed out, stopped, already resumed): nothing to do.
            return False
        return True
