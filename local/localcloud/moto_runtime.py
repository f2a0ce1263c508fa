"""moto with real Lambda handlers and fast Step Functions; every patch into moto internals is here.

moto is pinned exactly (see pyproject.toml) because the patches below reach into its internals.
tests/localcloud/test_moto_patches.py asserts each internal we rely on still exists and behaves, so
a moto upgrade that breaks a patch fails loudly instead of silently running the echo Lambda.

Patches (installed once, idempotently, by `install_patches`):
1. `LambdaFunction._invoke_lambda` -> `lambda_runner.run_function`: moto only runs code in Docker;
   every invocation path (Invoke, Step Functions tasks, event-source mappings, EventBridge targets)
   ends in this one method, so replacing it runs the real handlers everywhere.
2. `LambdaFunction.invoke`: moto flags a failed invocation `FunctionError: Handled`; Lambda reports
   an uncaught exception as `Unhandled`, which is what Step Functions and API Gateway react to.
3. `LambdaSimpleBackend.invoke` delegates to the real backend: under the config
   `{"lambda": {"use_docker": False}}` moto would otherwise echo the payload without running code.
4. `moto.stepfunctions.models.stepfunctions_backends` -> the executing parser backends: moto's
   CloudFormation registers state machines in the non-executing backend, so a state machine deployed
   from a template would be invisible to the executing API (moto bug).
5. Wait states and Retry back-off honour a time scale (`set_time_scale`), so a 60 s Wait takes 60 ms
   in tests. `TimeoutSeconds` and Lambda timeouts stay real time.
6. `StepFunctionsParserBackend.start_execution` names an unnamed execution with a UUID, as AWS
   does; moto names it "None", so a second unnamed execution fails with ExecutionAlreadyExists.
7. `events.models.Rule.send_to_targets` delivers to Lambda targets (moto raises
   NotImplementedError for them): the function is invoked with the event, as EventBridge does
   (a failure is logged, not raised, as for an asynchronous invocation). Other targets keep
   moto's handling. In process (mock_aws) the delivery runs in the caller's thread, before
   PutEvents returns. On a moto server it runs on a thread of its own, after PutEvents has
   answered, as on AWS: the publishing handler waits on that answer in another thread while
   holding the in-process runner's lock, so a synchronous delivery could not run until the
   publisher's read timed out (10 s x 3 attempts in billpay.core.aws): its Step Functions task
   timed out (States.Timeout after READY in `make dev`) and each retried PutEvents delivered
   the event once more.
8. `sqs.models.Queue.add_message` no longer invokes mapped functions inside SendMessage: a
   `localcloud.sqs_poller.SqsPoller` thread (started with moto) polls mapped queues as Lambda's
   poller does: batches, ReportBatchItemFailures, redelivery after the (scaled) visibility
   timeout, and so the redrive policy's dead-letter queue.
9. `Environment.set_stop` also wakes every task parked on a task token, and `set_error` leaves a
   stopped execution stopped: StopExecution ends such an execution at once, ABORTED, as on AWS;
   moto would keep it RUNNING until the task's TimeoutSeconds (the onboarding's waits last
   hours), then report the woken task's failure as the execution's.
10. `DynamoDBBackend.transact_write_items` backs up only the items a transaction touches: moto deep
   copies the whole table once per action to roll back a cancelled transaction, so one
   100-action transaction on a 20,000-item table copied two million items (minutes on this
   machine). `moto.dynamodb.models.copy` is replaced by a module whose `deepcopy` returns a Table
   unchanged (moto's own backup becomes a no-op) and the wrapper restores the touched items when
   the transaction is cancelled. DynamoDB's semantics are unchanged: all or nothing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import socket
import threading
import time
import types
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import moto
from moto import mock_aws
from moto.awslambda import models as lambda_models
from moto.awslambda_simple import models as lambda_simple_models
from moto.core.config import DefaultConfig, default_user_config
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.table import Table as DynamoTable
from moto.events import models as events_models
from moto.events.utils import EventTemplateParser
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.sqs import models as sqs_models
from moto.stepfunctions import models as sfn_models
from moto.stepfunctions.parser import models as sfn_parser_models
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from moto.stepfunctions.parser.asl.eval.environment import Environment as SfnEnvironment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

from localcloud import lambda_runner, sqs_poller

LOG = logging.getLogger(__name__)

PINNED_MOTO_VERSION = "5.2.5"
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

# The moto configuration the local cloud always runs with: state machines execute, and Lambda uses
# the regular backend (whose `_invoke_lambda` we replace) rather than the echoing "simple" one.
MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": True},
}

_patch_lock = threading.Lock()
_patches_installed = False
_time_scale = 1.0


def set_time_scale(scale: float) -> None:
    """Scale every Wait state and Retry interval (1.0 = real time, 0.001 = 1000 times faster)."""
    if not scale > 0:
        raise ValueError(f"time scale must be positive, got {scale!r}")
    global _time_scale
    _time_scale = scale


def time_scale() -> float:
    return _time_scale


# --- patch 1 and 2: Lambda ---------------------------------------------------------------------


def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    return lambda_runner.run_function(self, event)


_original_function_invoke = lambda_models.LambdaFunction.invoke


def _function_invoke(
    self: Any, body: str, request_headers: Any, response_headers: Any
) -> str | bytes:
    result: str | bytes = _original_function_invoke(self, body, request_headers, response_headers)
    if response_headers.get("x-amz-function-error") == "Handled":
        response_headers["x-amz-function-error"] = "Unhandled"
    return result


# --- patch 3: the "simple" Lambda backend ------------------------------------------------------


def _simple_backend_invoke(
    self: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> str | bytes | None:
    result: str | bytes | None = lambda_models.LambdaBackend.invoke(
        self, function_name, qualifier, body, headers, response_headers
    )
    return result


# --- patch 6: unnamed executions ---------------------------------------------------------------

_original_start_execution = sfn_parser_models.StepFunctionsParserBackend.start_execution


def _start_execution(
    self: Any,
    state_machine_arn: str,
    name: str | None = None,
    execution_input: Any = None,
    trace_header: Any = None,
) -> Any:
    # moto's own defaults are None too; its annotations say `str`.
    return _original_start_execution(
        self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
    )


# --- patch 7: EventBridge -> Lambda -------------------------------------------------------------

_original_send_to_targets = events_models.Rule.send_to_targets


def _event_for_target(target: dict[str, Any], event: Any, transform: bool) -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    if transform and "InputTransformer" in target:
        transformer = target["InputTransformer"]
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
    return event


def _send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
    def is_lambda(target: dict[str, Any]) -> bool:
        return str(target["Arn"]).startswith("arn:aws:lambda:")

    lambda_targets = [t for t in self.targets if is_lambda(t)]
    if len(lambda_targets) < len(self.targets):
        # moto's own delivery for the other targets, on a copy that lacks the Lambda ones.
        others = copy.copy(self)
        others.targets = [t for t in self.targets if not is_lambda(t)]
        _original_send_to_targets(others, original_event, transform_input)
    if not lambda_targets or not self.event_pattern.matches_event(original_event):
        return
    deliveries = [
        (str(target["Arn"]), _event_for_target(target, dict(original_event), transform_input))
        for target in lambda_targets
    ]
    if lambda_runner.serves_over_http():
        thread = threading.Thread(
            target=_deliver, args=(self.name, deliveries), name="eventbridge-delivery", daemon=True
        )
        thread.start()
    else:
        _deliver(self.name, deliveries)


def _deliver(rule: str, deliveries: list[tuple[str, Any]]) -> None:
    for arn, payload in deliveries:
        _, _, _, region, account, _, name, *qualifier = arn.split(":")
        try:
            lambda_models.lambda_backends[account][region].invoke(
                name,
                qualifier[0] if qualifier else None,
                json.dumps(payload),
                {"x-amz-invocation-type": "Event"},
                {},
            )
        except Exception:
            LOG.exception("EventBridge rule %s: delivering to %s failed", rule, arn)


# --- patch 5: time compression -----------------------------------------------------------------


def _scaled_wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
    # moto's version re-enters on int-rounded remainders, which never ends for fractional waits;
    # this one waits until a monotonic deadline or until the execution stops (StopExecution sets
    # program_state_event and flips is_running).
    deadline = time.monotonic() + max(wait_seconds, 0) * _time_scale
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        if env.program_state_event.wait(remaining) and env.is_running():
            # An unrelated state change woke us; keep waiting without spinning.
            time.sleep(min(remaining, 0.005))


class _ScaledSleepTime(types.ModuleType):
    """Stands in for the `time` module inside moto's retrier: `sleep` honours the time scale."""

    def __init__(self) -> None:
        super().__init__("time")

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(max(seconds, 0) * _time_scale)


# --- patch 9: StopExecution wakes a task parked on a task token --------------------------------

_original_set_stop = SfnEnvironment.set_stop


_original_set_error = SfnEnvironment.set_error


def _set_stop(self: Any, stop_date: Any, cause: str | None, error: str | None) -> None:
    _original_set_stop(self, stop_date=stop_date, cause=cause, error=error)
    # The parked task wakes with no outcome; the stopped program runs no further state.
    for endpoint in list(self.callback_pool_manager._pool.values()):
        endpoint.interrupt_all()


def _set_error(self: Any, error: Any) -> None:
    # The woken task fails (it got no outcome); the execution stays ABORTED, not FAILED.
    if isinstance(self._program_state, ProgramStopped):
        return
    _original_set_error(self, error=error)


class _CopyExceptTables:
    """Stands in for the `copy` module inside moto.dynamodb.models (patch 10)."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, DynamoTable):
            return value  # transact_write_items' whole-table backup: see _transact_write_items
        return copy.deepcopy(value, memo)


_original_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's transact_write_items, rolled back from a backup of the items it touches."""
    backup: list[tuple[Any, Any, Any, Any]] = []
    for action in transact_items:
        if len(action) != 1:
            continue  # moto refuses it before writing anything
        operation = next(iter(action.values()))
        table = self.tables.get(operation.get("TableName"))
        if table is None:
            continue
        key = operation.get("Key") or {
            name: operation.get("Item", {}).get(name)
            for name in (table.hash_key_attr, table.range_key_attr)
            if name
        }
        try:
            hash_key, range_key = self.get_keys_value(table, key)
            current = table.get_item(hash_key, range_key)
        except Exception:  # noqa: S112 - a malformed key: moto reports it, nothing written
            continue
        backup.append((table, hash_key, range_key, copy.deepcopy(current)))
    try:
        _original_transact_write_items(self, transact_items)
    except Exception:
        for table, hash_key, range_key, item in reversed(backup):
            if item is None:
                table.delete_item(hash_key, range_key)
            elif range_key is not None:
                table.items[hash_key][range_key] = item
            else:
                table.items[hash_key] = item
        raise


def install_patches() -> None:
    """Apply every patch once. Raises if moto is not the pinned version."""
    global _patches_installed
    with _patch_lock:
        if _patches_installed:
            return
        if moto.__version__ != PINNED_MOTO_VERSION:
            raise RuntimeError(
                f"localcloud patches moto internals and is pinned to moto=={PINNED_MOTO_VERSION}, "
                f"found {moto.__version__}; re-run tests/localcloud/test_moto_patches.py after "
                "updating the patches in localcloud/moto_runtime.py"
            )
        lambda_models.LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
        lambda_models.LambdaFunction.invoke = _function_invoke  # type: ignore[method-assign]
        lambda_simple_models.LambdaSimpleBackend.invoke = _simple_backend_invoke  # type: ignore[method-assign]
        sfn_models.stepfunctions_backends = sfn_parser_models.stepfunctions_parser_backends  # type: ignore[assignment]
        events_models.Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]
        sfn_parser_models.StepFunctionsParserBackend.start_execution = _start_execution  # type: ignore[method-assign]
        wait_function.WaitFunction._wait_interval = _scaled_wait_interval  # type: ignore[method-assign]
        SfnEnvironment.set_stop = _set_stop  # type: ignore[method-assign]
        SfnEnvironment.set_error = _set_error  # type: ignore[method-assign]
        retrier_decl.time = _ScaledSleepTime()  # type: ignore[attr-defined]
        sqs_models.Queue.add_message = sqs_poller.hide_mappings_from_send  # type: ignore[method-assign]

        dynamodb_models.copy = _CopyExceptTables  # type: ignore[attr-defined,assignment]
        dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
        _patches_installed = True


def patches_installed() -> bool:
    return _patches_installed


@contextlib.contextmanager
def in_process_moto(region: str = DEFAULT_REGION) -> Iterator[None]:
    """moto in this process (`mock_aws`), patched, with fake credentials; boto3 is intercepted."""
    install_patches()
    lambda_runner.configure(mode=lambda_runner.RunnerMode.IN_PROCESS, moto_endpoint=None)
    fake_env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }
    saved = {key: os.environ.get(key) for key in [*fake_env, "AWS_ENDPOINT_URL"]}
    os.environ.update(fake_env)
    # A stray endpoint would send handler calls past mock_aws to a real socket.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with (
            mock_aws(config=MOTO_CONFIG),
            sqs_poller.SqsPoller(DEFAULT_ACCOUNT_ID, region, time_scale),
        ):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class MotoServerPortInUse(RuntimeError):
    pass


@contextlib.contextmanager
def moto_server(
    host: str = "127.0.0.1",
    port: int = 5000,
    runner_mode: lambda_runner.RunnerMode = lambda_runner.RunnerMode.IN_PROCESS,
    region: str = DEFAULT_REGION,
) -> Iterator[str]:
    """moto as an HTTP server in this process (state shared with any client); yields its URL.

    Handlers run in this process or in subprocesses, their boto3 calls sent to the server.
    """
    install_patches()
    # ThreadedMotoServer binds in its thread and would wait forever for a busy port: probe first.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers do: a port in TIME_WAIT after a restart is free, a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise MotoServerPortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        if port == 0:
            port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    url = f"http://{host}:{port}"
    saved_port = os.environ.get("MOTO_PORT")
    # moto's Step Functions interpreter calls Lambda at localhost:$MOTO_PORT in server mode.
    os.environ["MOTO_PORT"] = str(port)
    # The same switch as mock_aws(config=...) flips, restored on exit.
    config_patch = mock.patch.dict(default_user_config, copy.deepcopy(MOTO_CONFIG))
    config_patch.start()
    lambda_runner.configure(mode=runner_mode, moto_endpoint=url)
    poller = sqs_poller.SqsPoller(DEFAULT_ACCOUNT_ID, region, time_scale).start()
    try:
        yield url
    finally:
        poller.stop()
        server.stop()
        config_patch.stop()
        lambda_runner.configure(mode=lambda_runner.RunnerMode.IN_PROCESS, moto_endpoint=None)
        if saved_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = saved_port
