import importlib
import json

import pytest
from aws_cdk.assertions import Match

from infra import constants
from infra.config import STAGES
from infra.constructs.onboarding import _STEPS
from infra.constructs.payments import _STEPS as PAYMENT_STEPS


def _functions(template):
    return template.find_resources("AWS::Lambda::Function")


def test_every_function_runs_python313_on_arm_with_the_layer(dev):
    functions = _functions(dev.service)
    # the API, one per onboarding step, one per payment step, the webhook ingress and processor,
    # the payables sync's step and the function that starts its runs
    assert len(functions) == 2 + len(_STEPS) + len(PAYMENT_STEPS) + 2 + 2  # the API: 2
    layers = dev.service.find_resources("AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    (layer_id,) = layers
    assert layers[layer_id]["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layers[layer_id]["Properties"]["CompatibleArchitectures"] == ["arm64"]
    for resource in functions.values():
        props = resource["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["Layers"] == [{"Ref": layer_id}]
        assert props["LoggingConfig"]["LogFormat"] == "JSON"


def test_every_handler_string_names_a_real_function():
    steps = (*_STEPS, *PAYMENT_STEPS)
    for handler in (
        constants.API_HANDLER,
        constants.API_CODAT_HANDLER,
        *(step.handler for step in steps),
        constants.WEBHOOK_INGRESS_HANDLER,
        constants.WEBHOOK_PROCESSOR_HANDLER,
    ):
        module, _, name = handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))


def test_functions_log_to_their_own_group_with_retention_and_no_managed_policies(dev):
    for resource in _functions(dev.service).values():
        group = resource["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert dev.service.to_json()["Resources"][group]["Properties"]["RetentionInDays"] == 14
    lambda_roles = [
        r
        for r in dev.service.find_resources("AWS::IAM::Role").values()
        if "lambda.amazonaws.com" in str(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert len(lambda_roles) == 2 + len(_STEPS) + len(PAYMENT_STEPS) + 2 + 2
    for role in lambda_roles:
        assert "ManagedPolicyArns" not in role["Properties"]


def _policy_of(template, role_prefix):
    """The statements of the one inline policy attached to the role whose logical id starts so."""
    policies = [
        p["Properties"]
        for p in template.find_resources("AWS::IAM::Policy").values()
        if any(r["Ref"].startswith(role_prefix) for r in p["Properties"]["Roles"])
    ]
    assert len(policies) == 1, policies
    return policies[0]["PolicyDocument"]["Statement"]


def _actions(statement):
    actions = statement["Action"]
    return set(actions if isinstance(actions, list) else [actions])


def test_api_role_starts_only_the_onboarding_and_payment_machines(dev):
    statements = _policy_of(dev.service, "FunctionsApiRole")
    by_action = {action: s for s in statements for action in _actions(s)}
    # Offboarding writes the company; relink and start go through the state machine.
    table_resources = str([s["Resource"] for s in statements if "dynamodb:PutItem" in _actions(s)])
    assert "Fn::ImportValue" in table_resources
    assert "CompaniesTable" in table_resources
    # minimizePolicies may merge the two grants into one statement with a list of resources.
    starts = {
        resource["Ref"]
        for s in statements
        if "states:StartExecution" in _actions(s)
        for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    }
    assert starts == {
        _machine_id(dev.service, "BillPay-dev-onboarding"),
        _machine_id(dev.service, "BillPay-dev-payments"),
    }
    for action in ("states:DescribeExecution", "states:StopExecution"):
        assert "execution:BillPay-dev-onboarding:*" in str(by_action[action])
    secrets = [s["Resource"] for s in statements if "secretsmanager:GetSecretValue" in _actions(s)]
    # The routes that call Codat have a function of their own: only it may read Codat's key.
    assert "CodatApiKey" not in str(secrets)
    codat_secrets = [
        s["Resource"]
        for s in _policy_of(dev.service, "FunctionsApiCodatRole")
        if "secretsmanager:GetSecretValue" in _actions(s)
    ]
    assert "CodatApiKey" in str(codat_secrets)
    for statement in statements:
        assert statement["Resource"] != "*"


def _route_functions(template, api_prefix):
    """`{"DELETE /companies/{companyId}": function logical id}` for every method of the API."""
    resources = template.find_resources("AWS::ApiGateway::Resource")

    def path(ref):
        if ref.get("Ref") not in resources:  # the API's root resource
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return f"{path(props['ParentId'])}/{props['PathPart']}"

    routes = {}
    for method in _methods_of(template, api_prefix):
        (function_id, _) = next(
            part["Fn::GetAtt"]
            for part in method["Integration"]["Uri"]["Fn::Join"][1]
            if isinstance(part, dict) and "Fn::GetAtt" in part
        )
        routes[f"{method['HttpMethod']} {path(method['ResourceId'])}"] = function_id
    return routes


def test_the_routes_that_call_codat_and_only_they_go_to_the_function_with_its_sdk(dev):
    routes = _route_functions(dev.service, "ProductApi")
    functions = dev.service.find_resources("AWS::Lambda::Function")
    by_handler = {
        route: functions[function_id]["Properties"]["Handler"]
        for route, function_id in routes.items()
    }
    codat_routes = {
        route for route, handler in by_handler.items() if handler == constants.API_CODAT_HANDLER
    }
    assert codat_routes == {
        "DELETE /companies/{companyId}",
        "POST /companies/{companyId}/bills",
        "PUT /companies/{companyId}/bills/{billId}",
        "POST /companies/{companyId}/bills/{billId}/attachments",
        "POST /companies/{companyId}/suppliers",
        "PUT /companies/{companyId}/suppliers/{supplierId}",
        "POST /companies/{companyId}/payment-accounts",
    }
    others = {by_handler[route] for route in set(by_handler) - codat_routes}
    assert others == {constants.API_HANDLER}
    assert len(routes) == 17


def test_register_company_role_writes_only_the_companies_table(dev):
    statements = _policy_of(dev.service, "FunctionsRegisterCompanyRole")
    for statement in statements:
        resource = str(statement["Resource"])
        assert resource != "*"
        if any(a.startswith("dynamodb:") for a in _actions(statement)):
            assert "CompaniesTable" in resource
        else:
            assert _actions(statement) <= {"logs:CreateLogStream", "logs:PutLogEvents"}


def _methods_of(template, api_prefix):
    return [
        m["Properties"]
        for m in template.find_resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["RestApiId"]["Ref"].startswith(api_prefix)
    ]


def test_product_api_is_iam_authorized_validated_logged_throttled_and_behind_waf(dev):
    methods = _methods_of(dev.service, "ProductApi")
    # The bills, suppliers and payment accounts routes are checked in test_payables_infra.py.
    payables = ("bills", "suppliers", "paymentaccounts")
    others = [
        m
        for m in methods
        if "payments" in str(m["ResourceId"])
        or not any(p in str(m["ResourceId"]) for p in payables)
    ]
    assert sorted(m["HttpMethod"] for m in others) == [
        "DELETE",
        "GET",
        "GET",
        "POST",
        "POST",
        "POST",
    ]
    for method in methods:
        assert method["AuthorizationType"] == "AWS_IAM"
        assert "RequestValidatorId" in method
    dev.service.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "dev",
            "TracingEnabled": True,
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "MethodSettings": [
                Match.object_like(
                    {
                        "LoggingLevel": "ERROR",
                        "DataTraceEnabled": False,
                        "ThrottlingRateLimit": 50,
                        "ThrottlingBurstLimit": 100,
                    }
                )
            ],
        },
    )
    dev.service.resource_count_is("AWS::WAFv2::WebACLAssociation", 2)  # product and webhook APIs
    dev.service.has_resource_properties(
        "AWS::ApiGateway::Model",
        {
            "Schema": Match.object_like(
                {
                    "required": ["companyId", "name", "platformKey"],
                    "properties": Match.object_like(
                        {
                            "platformKey": {
                                "type": "string",
                                "enum": ["akxx", "fbrh", "gbol", "knfz", "qhyg", "rwuv"],
                            }
                        }
                    ),
                }
            )
        },
    )


def _machine_id(template, name: str) -> str:
    machines = template.find_resources("AWS::StepFunctions::StateMachine")
    (machine_id,) = [i for i, m in machines.items() if m["Properties"]["StateMachineName"] == name]
    return machine_id


def _definition(template, name: str = "BillPay-dev-onboarding") -> dict:
    machine = template.to_json()["Resources"][_machine_id(template, name)]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    # References sit inside JSON strings (ARNs): a placeholder keeps the document valid.
    return json.loads("".join(p if isinstance(p, str) else "<ref>" for p in parts))


def test_onboarding_is_a_standard_state_machine_with_logging_and_tracing(dev):
    machine_id = _machine_id(dev.service, "BillPay-dev-onboarding")
    props = dev.service.to_json()["Resources"][machine_id]["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["StateMachineName"] == "BillPay-dev-onboarding"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_the_happy_path_runs_from_register_to_ready(dev):
    states = _definition(dev.service)["States"]
    path, name = [], "RegisterCompany"
    while name != "Ready":
        path.append(name)
        state = states[name]
        name = (
            (
                state["Default"]
                if name == "StartedEarlier?"
                else next(c["Next"] for c in state["Choices"] if c.get("StringEquals") == "linked")
            )
            if state["Type"] == "Choice"
            else state["Next"]
        )
    assert path == [
        "RegisterCompany",
        "StartedEarlier?",
        "CreateCodatCompany",
        "CreateConnection",
        "WaitForAuthorization",
        "AuthorizationOutcome",
        "RecordAuthorization",
        "WaitForInitialRead",
        "RecordInitialRead",
        "LoadCompanyData",
        "MarkReady",
    ]


def test_a_start_for_a_company_started_earlier_ends_before_codat(dev):
    states = _definition(dev.service)["States"]
    (choice,) = states["StartedEarlier?"]["Choices"]
    assert choice == {
        "Variable": "$.registration.startedEarlier",
        "BooleanEquals": True,
        "Next": "StartedEarlier",
    }
    assert states["StartedEarlier"]["Type"] == "Succeed"


def test_waits_park_a_task_token_and_reconcile_when_the_interval_passes(dev):
    states = _definition(dev.service)["States"]
    for wait, reconcile in (
        ("WaitForAuthorization", "ReconcileAuthorization"),
        ("WaitForInitialRead", "ReconcileInitialRead"),
    ):
        state = states[wait]
        assert state["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
        assert state["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
        assert state["TimeoutSecondsPath"] == "$.registration.timings.reconcileIntervalSeconds"
        timeout, anything = state["Catch"]
        assert (timeout["ErrorEquals"], timeout["Next"]) == (["States.Timeout"], reconcile)
        assert (anything["ErrorEquals"], anything["Next"]) == (["States.ALL"], "RecordFailure")
    # The stage's timings are the defaults RegisterCompany hands on.
    defaults = states["RegisterCompany"]["Parameters"]["Payload"]["defaultTimings"]
    assert defaults == {
        "reconcileIntervalSeconds": 3600,
        "linkExpirySeconds": 604800,
        "initialReadTimeoutSeconds": 86400,
    }


@pytest.mark.parametrize(
    "step",
    [
        "CreateCodatCompany",
        "CreateConnection",
        "ReconcileAuthorization",
        "ReconcileInitialRead",
        "LoadCompanyData",
    ],
)
def test_codat_steps_retry_wait_out_rate_limits_and_record_failures(dev, step):
    states = _definition(dev.service)["States"]
    state = states[step]
    retried = {tuple(r["ErrorEquals"]): r for r in state["Retry"]}
    assert retried[("CodatUnavailableError",)]["BackoffRate"] == 2
    assert retried[("CodatStillSyncingError",)]["MaxAttempts"] == 6
    rate_limited, anything = state["Catch"]
    assert rate_limited["ErrorEquals"] == ["CodatRateLimitedError"]
    assert (anything["ErrorEquals"], anything["Next"]) == (["States.ALL"], "RecordFailure")
    # The rate-limit branch waits for the error's retryAfterSeconds, then runs the step again.
    parse = states[rate_limited["Next"]]
    retry_after = states[parse["Next"]]
    hold = states[retry_after["Next"]]
    assert hold["Type"] == "Wait"
    assert hold["SecondsPath"] == "$.rateLimited.codat.retryAfterSeconds"
    assert hold["Next"] == step


def test_a_failed_or_expired_link_is_recorded_without_failing_the_execution(dev):
    states = _definition(dev.service)["States"]
    choices = {c["StringEquals"]: c["Next"] for c in states["AuthorizationOutcome"]["Choices"]}
    assert choices["pending"] == "WaitForAuthorization"
    for outcome, status in (("failed", "LINK_FAILED"), ("expired", "LINK_EXPIRED")):
        record = states[choices[outcome]]
        assert record["Parameters"]["Payload"]["status"] == status
        assert states[record["Next"]]["Type"] == "Succeed"
    assert states[states["RecordFailure"]["Next"]]["Type"] == "Fail"


def test_only_the_codat_steps_get_the_codat_key_and_only_publishers_the_bus(dev):
    template = dev.service.to_json()["Resources"]
    for step in _STEPS:
        (fn,) = [
            r
            for logical_id, r in template.items()
            if r["Type"] == "AWS::Lambda::Function"
            and logical_id.startswith(f"Functions{step.construct_id}")
            and r["Properties"]["Handler"] == step.handler
        ]
        env = fn["Properties"]["Environment"]["Variables"]
        assert ("CODAT_BASE_URL" in env) is step.calls_codat, step.construct_id
        assert ("CODAT_API_KEY_SECRET_ARN" in env) is step.calls_codat
        assert ("EVENT_BUS_NAME" in env) is step.publishes_events
        if step.calls_codat:
            assert env["CODAT_BASE_URL"] == "https://api.codat.io"
        actions = {
            a
            for s in _policy_of(dev.service, f"Functions{step.construct_id}Role")
            for a in _actions(s)
        }
        assert ("secretsmanager:GetSecretValue" in actions) is step.calls_codat
        assert ("events:PutEvents" in actions) is step.publishes_events


def test_the_wait_step_may_resume_tasks_of_this_state_machine_only(dev):
    statements = _policy_of(dev.service, "FunctionsWaitForSignalRole")
    (resume,) = [s for s in statements if "states:SendTaskSuccess" in _actions(s)]
    assert "stateMachine:BillPay-dev-onboarding" in json.dumps(resume["Resource"])


def test_alarms_notify_an_encrypted_topic(dev):
    alarms = dev.service.find_resources("AWS::CloudWatch::Alarm")
    functions = 2 + len(_STEPS) + len(PAYMENT_STEPS) + 2 + 2  # API (2), steps, webhooks, sync
    machines = 3  # onboarding, payments, payables sync: failed + timed out each
    webhooks = 7  # DLQ depth and age, queue age, 4xx rate, 5xx, signatures, the secret
    assert len(alarms) == functions + 2 * machines + 1 + webhooks  # + the API's 5xx
    (topic_id,) = dev.service.find_resources("AWS::SNS::Topic")
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    dev.service.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    dev.service.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_service_outputs_have_stable_ids(dev):
    outputs = dev.service.to_json()["Outputs"]
    for output_id in (
        constants.OUTPUT_API_URL,
        constants.OUTPUT_ONBOARDING_STATE_MACHINE_ARN,
        constants.OUTPUT_ALARM_TOPIC_ARN,
        constants.OUTPUT_WEBHOOK_URL,
        constants.OUTPUT_WEBHOOK_QUEUE_URL,
        constants.OUTPUT_WEBHOOK_DLQ_URL,
        constants.OUTPUT_DASHBOARD_NAME,
    ):
        assert output_id in outputs


def test_the_webhook_api_is_public_but_behind_waf_throttling_and_the_signature(dev):
    (method,) = _methods_of(dev.service, "WebhooksApi")
    assert method["HttpMethod"] == "POST"
    assert method["AuthorizationType"] == "NONE"
    dev.service.has_resource_properties(
        "AWS::ApiGateway::RestApi", {"Name": "BillPay-dev-webhooks"}
    )
    acls = dev.service.find_resources("AWS::WAFv2::WebACL")
    webhook_acl = next(a for a in acls.values() if "webhooks" in str(a["Properties"]))
    common = webhook_acl["Properties"]["Rules"][0]["Statement"]["ManagedRuleGroupStatement"]
    assert common["RuleActionOverrides"][0]["Name"] == "SizeRestrictions_BODY"
    # No allowlist unless configured: then a first rule blocks every other source.
    assert all(r["Name"] != "OnlyCodatSourceIps" for r in webhook_acl["Properties"]["Rules"])
    # Its own stage, throttled with the webhook limits (not the product API's)
    (stage,) = [
        s["Properties"]
        for s in dev.service.find_resources("AWS::ApiGateway::Stage").values()
        if s["Properties"]["RestApiId"]["Ref"].startswith("WebhooksApi")
    ]
    (settings,) = stage["MethodSettings"]
    config = STAGES["dev"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (
        config.webhook_rate_limit,
        config.webhook_burst_limit,
    )
    # The ingress gives up (and answers 5xx, which Codat retries) well inside Codat's 15 s
    (ingress,) = [
        f["Properties"]
        for f in _functions(dev.service).values()
        if f["Properties"]["Handler"] == constants.WEBHOOK_INGRESS_HANDLER
    ]
    assert ingress["Timeout"] <= 10


def test_the_webhook_allowlist_blocks_other_sources_when_configured(tmp_path):
    from aws_cdk.assertions import Template

    from infra.app import build_app

    cidrs = '{"webhook_source_cidrs": ["4.159.114.108/32", "20.117.190.191/32"]}'
    _, _, service = build_app(
        outdir=str(tmp_path),
        context={"stage": "dev", "config": cidrs, "aws:cdk:bundling-stacks": []},
    )
    template = Template.from_stack(service)
    template.has_resource_properties(
        "AWS::WAFv2::IPSet", {"Addresses": ["4.159.114.108/32", "20.117.190.191/32"]}
    )
    template.has_resource_properties(
        "AWS::WAFv2::WebACL",
        {
            "Rules": Match.array_with(
                [Match.object_like({"Name": "OnlyCodatSourceIps", "Action": {"Block": {}}})]
            )
        },
    )


def test_webhooks_are_queued_with_a_dlq_and_processed_with_partial_batch_failures(dev):
    queues = dev.service.find_resources("AWS::SQS::Queue")
    assert len(queues) == 2
    redrive = [
        q["Properties"]["RedrivePolicy"]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    ]
    assert redrive[0]["maxReceiveCount"] == 5
    dev.service.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"]},
    )
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_the_processor_may_resume_onboarding_and_query_one_index_by_name(dev):
    statements = _policy_of(dev.service, "FunctionsWebhookProcessorRole")
    actions = {a for s in statements for a in _actions(s)}
    assert "states:SendTaskSuccess" in actions
    assert "events:PutEvents" in actions
    (query,) = [s for s in statements if _actions(s) == {"dynamodb:Query"}]
    assert "index/byCodatCompanyId" in str(query["Resource"])
    # No function is granted every index of a table.
    for policy in dev.service.find_resources("AWS::IAM::Policy").values():
        assert "/index/*" not in str(policy)


def test_the_operations_dashboard_exists(dev):
    dev.service.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": "BillPay-dev-operations"}
    )
