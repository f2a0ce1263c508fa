"""Each patch into moto internals (localcloud/moto_runtime.py) and each internal the local cloud
reads, checked on its own: a moto upgrade that moves or changes one fails here, by name.
"""

from __future__ import annotations

import inspect
import io
import json
import time
import zipfile

import boto3
import moto
import pytest
from moto import mock_aws
from moto.awslambda import models as lambda_models
from moto.awslambda_simple import models as lambda_simple_models
from moto.cloudformation import parsing as cfn_parsing
from moto.dynamodb import models as dynamodb_models
from moto.events import models as events_models
from moto.stepfunctions import models as sfn_models
from moto.stepfunctions import responses as sfn_responses
from moto.stepfunctions.parser import models as sfn_parser_models
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
from moto.stepfunctions.parser.asl.eval.environment import Environment as SfnEnvironment

from localcloud import lambda_runner, moto_runtime

HANDLERS = """
import os

class Boom(Exception):
    pass

def ok(event, context):
    return {
        "got": event,
        "env": os.environ.get("GREETING"),
        "function": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }

def boom(event, context):
    raise Boom("it went wrong")
"""


def _zip(source: str, name: str = "patch_probe.py") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, source)
    return buffer.getvalue()


def _role() -> str:
    iam = boto3.client("iam")
    try:
        return iam.get_role(RoleName="localcloud-test")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        return iam.create_role(
            RoleName="localcloud-test", AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]


def _create_function(name: str, handler: str, module: str = "patch_probe") -> str:
    created = boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=_role(),
        Handler=f"{module}.{handler}",
        Code={"ZipFile": _zip(HANDLERS, f"{module}.py")},
        Environment={"Variables": {"GREETING": f"hello {name}"}},
        MemorySize=256,
        Timeout=7,
    )
    arn: str = created["FunctionArn"]
    return arn


def _wait(sfn, execution_arn: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.01)
    raise TimeoutError(execution_arn)


def test_moto_is_the_pinned_version():
    assert moto.__version__ == moto_runtime.PINNED_MOTO_VERSION


def test_install_patches_replaces_exactly_the_documented_attributes():
    moto_runtime.install_patches()
    assert lambda_models.LambdaFunction._invoke_lambda is moto_runtime._invoke_lambda
    assert lambda_models.LambdaFunction.invoke is moto_runtime._function_invoke
    assert lambda_simple_models.LambdaSimpleBackend.invoke is moto_runtime._simple_backend_invoke
    assert sfn_models.stepfunctions_backends is sfn_parser_models.stepfunctions_parser_backends
    assert wait_function.WaitFunction._wait_interval is moto_runtime._scaled_wait_interval
    assert (
        sfn_parser_models.StepFunctionsParserBackend.start_execution
        is moto_runtime._start_execution
    )
    assert events_models.Rule.send_to_targets is moto_runtime._send_to_targets
    assert isinstance(retrier_decl.time, moto_runtime._ScaledSleepTime)
    assert SfnEnvironment.set_stop is moto_runtime._set_stop
    assert SfnEnvironment.set_error is moto_runtime._set_error
    assert dynamodb_models.copy is moto_runtime._CopyExceptTables
    assert (
        dynamodb_models.DynamoDBBackend.transact_write_items is moto_runtime._transact_write_items
    )


def test_the_internals_the_patches_replace_have_the_shape_they_were_written_for():
    # The originals' signatures: a changed one means moto calls our replacement differently.
    assert list(inspect.signature(moto_runtime._original_function_invoke).parameters) == [
        "self",
        "body",
        "request_headers",
        "response_headers",
    ]
    assert "self._invoke_lambda(event=body)" in inspect.getsource(
        moto_runtime._original_function_invoke
    )
    assert '"Handled"' in inspect.getsource(moto_runtime._original_function_invoke)
    # The CloudFormation hook looks the backends up by this module-global name at call time.
    create = sfn_models.StateMachine.create_from_cloudformation_json
    assert "stepfunctions_backends" in create.__func__.__code__.co_names
    # The executing API is chosen by this config switch.
    assert "execute_state_machine" in inspect.getsource(sfn_responses.get_backend)
    # The retrier sleeps through the module's `time` name; the wait through program_state_event.
    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl.RetrierDecl._eval_body)
    assert "self._wait_interval(env=env, wait_seconds=w_sec)" in inspect.getsource(
        wait_function.WaitFunction._eval_body
    )
    # StopExecution wakes parked tasks through the callback pool's endpoints.
    assert "callback_pool_manager" in inspect.getsource(SfnEnvironment.__init__)
    assert callable(CallbackEndpoint.interrupt_all)
    # Patch 10: moto backs a transaction up through the module's `copy`, table by table, and
    # restores `self.tables[...]` from that backup (a no-op once the backup is the table itself).
    transact = inspect.getsource(moto_runtime._original_transact_write_items)
    assert "copy.deepcopy(\n                    self.tables[table_name]" in transact
    assert "self.tables[table_name] = original_table_state[table_name]" in transact
    # deploy.py asks this map which resource types moto's CloudFormation can create.
    assert "AWS::Lambda::Function" in cfn_parsing.get_model_map()


def test_invoke_runs_the_real_handler_with_context_and_environment():
    with moto_runtime.in_process_moto():
        arn = _create_function("probe-ok", "ok")
        result = boto3.client("lambda").invoke(FunctionName="probe-ok", Payload=b'{"a": 1}')
        payload = json.loads(result["Payload"].read())
        fn = lambda_models.lambda_backends["123456789012"]["us-east-1"].get_function("probe-ok")
        # The attributes lambda_runner reads from moto's LambdaFunction.
        for attribute in (
            "handler",
            "environment_vars",
            "code_bytes",
            "layers",
            "timeout",
            "memory_size",
            "function_arn",
            "function_name",
            "logs_group_name",
            "logs_backend",
            "run_time",
            "version",
            "region",
            "account_id",
        ):
            assert hasattr(fn, attribute), attribute
    assert "FunctionError" not in result
    assert payload["got"] == {"a": 1}
    assert payload["env"] == "hello probe-ok"
    assert payload["function"] == "probe-ok"
    assert payload["memory"] == 256
    assert payload["arn"] == arn
    assert len(payload["request_id"]) == 36
    assert 0 < payload["remaining_ms"] <= 7000


def test_function_environment_is_applied_only_for_the_call():
    with moto_runtime.in_process_moto():
        _create_function("probe-env", "ok")
        boto3.client("lambda").invoke(FunctionName="probe-env", Payload=b"{}")
        import os

        assert "GREETING" not in os.environ


def test_a_raising_handler_is_an_unhandled_function_error_shaped_like_lambdas():
    with moto_runtime.in_process_moto():
        _create_function("probe-boom", "boom")
        result = boto3.client("lambda").invoke(FunctionName="probe-boom", Payload=b"{}")
    payload = json.loads(result["Payload"].read())
    assert result["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Boom"
    assert payload["errorMessage"] == "it went wrong"
    assert any("raise Boom" in line for line in payload["stackTrace"])


def test_simple_lambda_backend_also_runs_the_real_handler():
    moto_runtime.install_patches()
    lambda_runner.configure(lambda_runner.RunnerMode.IN_PROCESS, None)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        client = boto3.client("lambda", region_name="us-east-1")
        client.create_function(
            FunctionName="probe-simple",
            Runtime="python3.11",
            Role=_role(),
            Handler="patch_probe_simple.ok",
            Code={"ZipFile": _zip(HANDLERS, "patch_probe_simple.py")},
        )
        assert isinstance(lambda_models.LambdaBackend.__dict__["invoke"], type(lambda: None)), (
            "LambdaBackend.invoke moved"
        )
        result = client.invoke(FunctionName="probe-simple", Payload=b'{"x": 2}')
    assert json.loads(result["Payload"].read())["got"] == {"x": 2}


_PASS_MACHINE = {
    "StartAt": "P",
    "States": {"P": {"Type": "Pass", "Result": {"ok": 1}, "End": True}},
}


def test_state_machine_created_by_cloudformation_is_visible_to_the_executing_backend():
    template = {
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": json.dumps(_PASS_MACHINE),
                    "RoleArn": "arn:aws:iam::123456789012:role/unused",
                },
            }
        },
        "Outputs": {"Arn": {"Value": {"Ref": "Machine"}}},
    }
    with moto_runtime.in_process_moto():
        cfn = boto3.client("cloudformation")
        cfn.create_stack(StackName="probe", TemplateBody=json.dumps(template))
        arn = cfn.describe_stacks(StackName="probe")["Stacks"][0]["Outputs"][0]["OutputValue"]
        sfn = boto3.client("stepfunctions")
        execution = sfn.start_execution(stateMachineArn=arn, input="{}")
        description = _wait(sfn, execution["executionArn"])
    assert description["status"] == "SUCCEEDED"
    assert json.loads(description["output"]) == {"ok": 1}


def test_unnamed_executions_get_unique_names():
    assert list(inspect.signature(moto_runtime._original_start_execution).parameters) == [
        "self",
        "state_machine_arn",
        "name",
        "execution_input",
        "trace_header",
    ]
    with moto_runtime.in_process_moto():
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(
            name="unnamed-probe", definition=json.dumps(_PASS_MACHINE), roleArn=_role()
        )["stateMachineArn"]
        first = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        second = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert first != second
    assert not first.endswith(":None")


def test_state_does_not_leak_between_moto_sessions():
    with moto_runtime.in_process_moto():
        boto3.client("stepfunctions").create_state_machine(
            name="leak-probe", definition=json.dumps(_PASS_MACHINE), roleArn=_role()
        )
    with moto_runtime.in_process_moto():
        machines = boto3.client("stepfunctions").list_state_machines()["stateMachines"]
    assert machines == []


def test_wait_states_honour_the_time_scale():
    definition = {
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}},
    }
    with moto_runtime.in_process_moto():
        moto_runtime.set_time_scale(0.001)
        try:
            sfn = boto3.client("stepfunctions")
            arn = sfn.create_state_machine(
                name="wait-probe", definition=json.dumps(definition), roleArn=_role()
            )["stateMachineArn"]
            started = time.monotonic()
            description = _wait(sfn, sfn.start_execution(stateMachineArn=arn)["executionArn"])
            elapsed = time.monotonic() - started
        finally:
            moto_runtime.set_time_scale(1.0)
    assert description["status"] == "SUCCEEDED"
    assert elapsed < 3.0


def test_a_scaled_wait_still_waits_the_scaled_time():
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 2, "End": True}}}
    with moto_runtime.in_process_moto():
        moto_runtime.set_time_scale(0.2)
        try:
            sfn = boto3.client("stepfunctions")
            arn = sfn.create_state_machine(
                name="wait-probe-2", definition=json.dumps(definition), roleArn=_role()
            )["stateMachineArn"]
            started = time.monotonic()
            _wait(sfn, sfn.start_execution(stateMachineArn=arn)["executionArn"])
            elapsed = time.monotonic() - started
        finally:
            moto_runtime.set_time_scale(1.0)
    assert 0.35 < elapsed < 3.0


def test_retry_back_off_honours_the_time_scale_and_retries_really_happen():
    with moto_runtime.in_process_moto():
        moto_runtime.set_time_scale(0.001)
        try:
            function_arn = _create_function("probe-retry", "boom")
            definition = {
                "StartAt": "T",
                "States": {
                    "T": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": function_arn, "Payload": {}},
                        "Retry": [
                            {
                                "ErrorEquals": ["Boom"],
                                "IntervalSeconds": 30,
                                "MaxAttempts": 3,
                                "BackoffRate": 2,
                            }
                        ],
                        "End": True,
                    }
                },
            }
            sfn = boto3.client("stepfunctions")
            arn = sfn.create_state_machine(
                name="retry-probe", definition=json.dumps(definition), roleArn=_role()
            )["stateMachineArn"]
            started = time.monotonic()
            execution_arn = sfn.start_execution(stateMachineArn=arn)["executionArn"]
            description = _wait(sfn, execution_arn)
            elapsed = time.monotonic() - started
            events = sfn.get_execution_history(executionArn=execution_arn)["events"]
        finally:
            moto_runtime.set_time_scale(1.0)
    assert description["status"] == "FAILED"
    assert description["error"] == "Boom"
    # 1 attempt + 3 retries, with 30 + 60 + 120 s of back-off compressed to 0.21 s.
    assert sum(e["type"] == "TaskFailed" for e in events) == 4
    assert elapsed < 5.0


def test_time_scale_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        moto_runtime.set_time_scale(0)


RECORDER = """
import json

import boto3


def record(event, context):
    boto3.client("sqs").send_message(
        QueueUrl=boto3.client("sqs").get_queue_url(QueueName="seen")["QueueUrl"],
        MessageBody=json.dumps(event),
    )
"""


def _recorder(name: str) -> str:
    arn: str = boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=_role(),
        Handler="recorder_probe.record",
        Code={"ZipFile": _zip(RECORDER, "recorder_probe.py")},
    )["FunctionArn"]
    return arn


def _seen(sqs) -> list:
    url = sqs.get_queue_url(QueueName="seen")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    return [json.loads(m["Body"]) for m in messages]


def test_eventbridge_rules_deliver_to_lambda_targets_and_keep_the_others():
    assert "Expr not defined" in inspect.getsource(moto_runtime._original_send_to_targets)
    with moto_runtime.in_process_moto():
        sqs = boto3.client("sqs")
        sqs.create_queue(QueueName="seen")
        copy_url = sqs.create_queue(QueueName="copies")["QueueUrl"]
        copy_arn = sqs.get_queue_attributes(QueueUrl=copy_url, AttributeNames=["QueueArn"])
        function_arn = _recorder("on-event")
        events = boto3.client("events")
        events.create_event_bus(Name="bus")
        events.put_rule(Name="r", EventBusName="bus", EventPattern=json.dumps({"source": ["app"]}))
        events.put_targets(
            Rule="r",
            EventBusName="bus",
            Targets=[
                {"Id": "fn", "Arn": function_arn},
                {"Id": "const", "Arn": function_arn, "Input": '{"constant": true}'},
                {"Id": "queue", "Arn": copy_arn["Attributes"]["QueueArn"]},
            ],
        )
        events.put_events(
            Entries=[
                {"Source": "app", "DetailType": "t", "Detail": '{"n": 1}', "EventBusName": "bus"},
                {"Source": "other", "DetailType": "t", "Detail": "{}", "EventBusName": "bus"},
            ]
        )
        seen = _seen(sqs)
        copies = sqs.receive_message(QueueUrl=copy_url)["Messages"]
    assert {"constant": True} in seen
    (event,) = [e for e in seen if "detail" in e]
    assert event["source"] == "app"
    assert event["detail"] == {"n": 1}
    assert len(seen) == 2
    assert json.loads(copies[0]["Body"])["detail"] == {"n": 1}


def test_sqs_event_source_mappings_reach_the_real_handler():
    with moto_runtime.in_process_moto():
        sqs = boto3.client("sqs")
        sqs.create_queue(QueueName="seen")
        url = sqs.create_queue(QueueName="work")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        _recorder("on-message")
        boto3.client("lambda").create_event_source_mapping(
            EventSourceArn=arn["Attributes"]["QueueArn"], FunctionName="on-message", BatchSize=1
        )
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        (event,) = _eventually_seen(sqs)
    assert event["Records"][0]["body"] == "hello"
    assert event["Records"][0]["eventSource"] == "aws:sqs"
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1"


def _eventually_seen(sqs, timeout: float = 10.0) -> list:
    """The poller delivers from its own thread: wait for what the recorder sent."""
    url = sqs.get_queue_url(QueueName="seen")["QueueUrl"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if messages:
            return [json.loads(m["Body"]) for m in messages]
        time.sleep(0.02)
    raise AssertionError("nothing was delivered")


PARTIAL = """
import json

import boto3


def handle(event, context):
    seen = boto3.client("sqs").get_queue_url(QueueName="seen")["QueueUrl"]
    failures = []
    for record in event["Records"]:
        boto3.client("sqs").send_message(QueueUrl=seen, MessageBody=json.dumps(
            {"body": record["body"], "count": record["attributes"]["ApproximateReceiveCount"]}))
        if record["body"] == "poison":
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
"""


def test_the_sqs_poller_honours_partial_batch_failures_and_the_dead_letter_queue():
    with moto_runtime.in_process_moto():
        moto_runtime.set_time_scale(0.001)  # visibility timeout 30 s -> 30 ms
        try:
            sqs = boto3.client("sqs")
            sqs.create_queue(QueueName="seen")
            dlq_url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
            redrive = {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
                       "maxReceiveCount": 3}  # fmt: skip
            url = sqs.create_queue(
                QueueName="work",
                Attributes={"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(redrive)},
            )["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            boto3.client("lambda").create_function(
                FunctionName="partial", Runtime="python3.11", Role=_role(),
                Handler="partial_probe.handle", Code={"ZipFile": _zip(PARTIAL, "partial_probe.py")},
            )  # fmt: skip
            boto3.client("lambda").create_event_source_mapping(
                EventSourceArn=arn["Attributes"]["QueueArn"], FunctionName="partial",
                BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"],
            )  # fmt: skip
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": "1", "MessageBody": "poison"}, {"Id": "2", "MessageBody": "ok"}],
            )
            deadline = time.monotonic() + 10
            dead: list = []
            while not dead and time.monotonic() < deadline:
                dead = sqs.receive_message(QueueUrl=dlq_url).get("Messages", [])
                time.sleep(0.02)
            seen = []
            while batch := sqs.receive_message(
                QueueUrl=sqs.get_queue_url(QueueName="seen")["QueueUrl"], MaxNumberOfMessages=10
            ).get("Messages", []):
                seen += [json.loads(m["Body"]) for m in batch]
                for m in batch:
                    sqs.delete_message(QueueUrl=sqs.get_queue_url(QueueName="seen")["QueueUrl"],
                                       ReceiptHandle=m["ReceiptHandle"])  # fmt: skip
        finally:
            moto_runtime.set_time_scale(1.0)
    # The good record was delivered once; the poisoned one three times, then dead-lettered.
    assert [s["count"] for s in seen if s["body"] == "ok"] == ["1"]
    assert sorted(s["count"] for s in seen if s["body"] == "poison") == ["1", "2", "3"]
    assert [m["Body"] for m in dead] == ["poison"]


def test_stopping_an_execution_parked_on_a_task_token_ends_it_at_once():
    # Given an execution waiting (for up to an hour) on a task token
    with moto_runtime.in_process_moto():
        arn = _create_function("probe-park", "ok")
        definition = {
            "StartAt": "Park",
            "States": {
                "Park": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {"FunctionName": arn, "Payload": {"token.$": "$$.Task.Token"}},
                    "TimeoutSeconds": 3600,
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "After"}],
                    "End": True,
                },
                "After": {"Type": "Pass", "End": True},
            },
        }
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="park-probe", definition=json.dumps(definition), roleArn=_role()
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        deadline = time.monotonic() + 10
        while not any(
            e["type"] == "TaskSubmitted"
            for e in sfn.get_execution_history(executionArn=execution)["events"]
        ):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # When it is stopped
        sfn.stop_execution(executionArn=execution, cause="offboarded")
        # Then it is ABORTED at once, and nothing after the parked task ran
        description = _wait(sfn, execution, timeout=5)
        entered = [
            e["stateEnteredEventDetails"]["name"]
            for e in sfn.get_execution_history(executionArn=execution)["events"]
            if "stateEnteredEventDetails" in e
        ]
    assert description["status"] == "ABORTED"
    assert entered == ["Park"]


def _table_with_items(dynamodb, count):
    dynamodb.create_table(
        TableName="t",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(count):
        dynamodb.put_item(
            TableName="t", Item={"pk": {"S": "p"}, "sk": {"S": f"{n}"}, "v": {"N": "0"}}
        )


def _update(n, condition="attribute_exists(sk)"):
    return {
        "Update": {
            "TableName": "t",
            "Key": {"pk": {"S": "p"}, "sk": {"S": f"{n}"}},
            "UpdateExpression": "SET v = :one",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


def test_a_cancelled_transaction_is_rolled_back_from_the_items_it_touched():
    with moto_runtime.in_process_moto():
        dynamodb = boto3.client("dynamodb")
        _table_with_items(dynamodb, 3)
        put_new = {"Put": {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": "new"}}}}
        failing = _update(2, "v = :one")  # v is 0: the condition fails
        with pytest.raises(dynamodb.exceptions.TransactionCanceledException) as cancelled:
            dynamodb.transact_write_items(TransactItems=[_update(0), put_new, failing])
        codes = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
        assert codes == ["None", "None", "ConditionalCheckFailed"]
        items = dynamodb.scan(TableName="t")["Items"]
        # The update before the failure is undone and the new item is gone: all or nothing.
        assert sorted((i["sk"]["S"], i["v"]["N"]) for i in items) == [
            ("0", "0"),
            ("1", "0"),
            ("2", "0"),
        ]
        # A transaction that succeeds is applied whole.
        dynamodb.transact_write_items(TransactItems=[_update(0), _update(1), put_new])
        items = {
            i["sk"]["S"]: i.get("v", {}).get("N") for i in dynamodb.scan(TableName="t")["Items"]
        }
        assert items == {"0": "1", "1": "1", "2": "0", "new": None}


def test_a_transaction_does_not_copy_the_table():
    with moto_runtime.in_process_moto():
        dynamodb = boto3.client("dynamodb")
        _table_with_items(dynamodb, 300)
        copied = []
        original = moto_runtime._CopyExceptTables.deepcopy

        def counting(value, memo=None):
            copied.append(type(value).__name__)
            return original(value, memo)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(moto_runtime._CopyExceptTables, "deepcopy", staticmethod(counting))
            dynamodb.transact_write_items(TransactItems=[_update(n) for n in range(100)])
        # moto asked for a table copy per action and got the table itself back; what is really
        # copied is one item per action (update_item keeps the old item for ReturnValues).
        assert copied.count("Table") == 100
        assert copied.count("Item") == 100
        assert set(copied) == {"Table", "Item"}
