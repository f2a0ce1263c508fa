"""The payment workflow, its table, its routes and its grants, as synthesized (cdk-nag included)."""

import json

import pytest
from aws_cdk.assertions import Match
from pydantic import ValidationError

from billpay.payments.logic import Next
from billpay.payments.models import PaymentPolicy
from infra import constants
from infra.config import load_stage
from infra.constructs.payments import _STEPS

from .test_service_stack import _actions, _definition, _functions, _machine_id, _policy_of

MACHINE = "BillPay-dev-payments"


def _states(dev) -> dict:
    return _definition(dev.service, MACHINE)["States"]


def test_payments_is_a_standard_state_machine_with_logging_and_tracing(dev):
    props = dev.service.to_json()["Resources"][_machine_id(dev.service, MACHINE)]["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_every_next_a_step_can_answer_routes_to_a_state_of_that_name(dev):
    states = _states(dev)
    route = states["Route"]
    assert route["Type"] == "Choice"
    routed = {c["StringEquals"]: c["Next"] for c in route["Choices"]}
    assert routed == {step.value: step.value for step in Next}
    assert states[route["Default"]]["Type"] == "Fail"
    for step in Next:
        assert step.value in states


def test_waits_last_what_the_step_says_then_run_the_step_they_wait_for(dev):
    states = _states(dev)
    for wait, then in (
        ("WaitForBill", "TakeBill"),
        ("WaitToCheck", "Check"),
        ("WaitForRateLimit", "Submit"),
        ("WaitToReconcile", "Reconcile"),
    ):
        assert states[wait]["Type"] == "Wait"
        assert states[wait]["SecondsPath"] == "$.step.waitSeconds"
        assert states[wait]["Next"] == then


def test_steps_get_the_payment_route_on_their_answer_and_give_up_when_they_keep_failing(dev):
    states = _states(dev)
    assert _definition(dev.service, MACHINE)["StartAt"] == "TakeBill"
    for name in ("TakeBill", "Check", "Submit", "Reconcile"):
        state = states[name]
        assert state["Parameters"]["Payload"] == {
            "companyId.$": "$.companyId",
            "paymentId.$": "$.paymentId",
        }
        assert state["ResultPath"] == "$.step"
        assert state["Next"] == "Route"
        assert state["Retry"][-1]["ErrorEquals"] == ["States.ALL"]
        assert state["Retry"][-1]["MaxAttempts"] >= 3
        assert state["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "GiveUp"}
        ]
    assert states["Finish"]["Next"] == "Done"
    assert states["GiveUp"]["Next"] == "Stopped"
    assert states["GiveUp"]["Parameters"]["Payload"]["error.$"] == "$.error"
    assert states["NeedsReview"]["Type"] == "Fail"


def test_the_execution_outlasts_the_longest_payment_the_policy_allows(dev):
    props = dev.service.to_json()["Resources"][_machine_id(dev.service, MACHINE)]["Properties"]
    timeout = _definition(dev.service, MACHINE)["TimeoutSeconds"]
    policy = PaymentPolicy()
    assert timeout > policy.max_pending_seconds + policy.max_attempts * (
        policy.idempotency_window_seconds + 2 * policy.window_margin_seconds
    )
    assert props["StateMachineName"] == MACHINE


def _payment_functions(dev) -> dict:
    return {
        step.name: next(
            f["Properties"]
            for f in _functions(dev.service).values()
            if f["Properties"]["Handler"] == step.handler
        )
        for step in _STEPS
    }


def test_every_step_gets_the_policy_and_only_codat_steps_the_codat_key(dev):
    for step in _STEPS:
        env = _payment_functions(dev)[step.name]["Environment"]["Variables"]
        assert json.loads(env[constants.ENV_PAYMENT_POLICY]) == json.loads(PaymentPolicy().to_env())
        for name in (
            constants.ENV_PAYMENTS_TABLE,
            constants.ENV_PAYABLES_TABLE,
            constants.ENV_COMPANIES_TABLE,
            constants.ENV_EVENT_BUS_NAME,
        ):
            assert name in env
        assert (constants.ENV_CODAT_API_KEY_SECRET_ARN in env) is step.calls_codat


def test_step_roles_hold_only_what_their_step_does(dev):
    for step in _STEPS:
        statements = _policy_of(dev.service, f"FunctionsPayment{step.name}Role")
        text = json.dumps(statements)
        assert ("secretsmanager:GetSecretValue" in text) is step.calls_codat
        assert ("events:PutEvents" in text) is step.publishes_events
        for statement in statements:
            assert statement["Resource"] != "*"
            if "PayablesTable" in json.dumps(statement["Resource"]):
                # Items by key: the bill and its payments item; never an index, never a scan.
                assert _actions(statement) == {
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                }
                assert "index" not in json.dumps(statement["Resource"])


def test_the_payment_routes_are_iam_authorized_and_validated(dev):
    resources = dev.service.find_resources("AWS::ApiGateway::Resource")
    paths = {r["Properties"]["PathPart"] for r in resources.values()}
    assert {"bills", "{billId}", "payments", "{paymentId}"} <= paths
    dev.service.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "AuthorizationType": "AWS_IAM",
            "RequestParameters": {
                "method.request.path.companyId": True,
                "method.request.path.billId": True,
            },
            "RequestModels": {"application/json": Match.any_value()},
        },
    )
    dev.service.has_resource_properties(
        "AWS::ApiGateway::Model",
        {
            "Schema": Match.object_like(
                {
                    "required": ["paymentId", "amount", "date", "accountId"],
                    "additionalProperties": False,
                }
            )
        },
    )


def test_payments_table_is_keyed_by_company_and_item_and_kept_in_prod(dev, stage_synth):
    dev.state.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "companyId", "KeyType": "HASH"},
                {"AttributeName": "itemKey", "KeyType": "RANGE"},
            ],
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    )
    assert constants.OUTPUT_PAYMENTS_TABLE in dev.state.to_json()["Outputs"]
    assert constants.OUTPUT_PAYMENT_STATE_MACHINE_ARN in dev.service.to_json()["Outputs"]
    prod = stage_synth("prod")
    prod.state.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "KeySchema": [
                        {"AttributeName": "companyId", "KeyType": "HASH"},
                        {"AttributeName": "itemKey", "KeyType": "RANGE"},
                    ],
                    "DeletionProtectionEnabled": True,
                }
            ),
        },
    )


def test_a_stage_may_compress_the_policy_and_bad_values_stop_synth():
    config = load_stage(
        "dev", {"payments": {"idempotencyWindowSeconds": 3, "windowMarginSeconds": 1}}
    )
    assert config.payments.idempotency_window_seconds == 3
    assert config.payments.max_attempts == PaymentPolicy().max_attempts
    with pytest.raises(ValidationError, match="windowMarginSeconds"):
        load_stage("dev", {"payments": {"idempotencyWindowSeconds": 60, "windowMarginSeconds": 60}})
    with pytest.raises(ValidationError):
        load_stage("dev", {"payments": {"reconcileScheduleSeconds": [0]}})
