"""The payables capability's infrastructure: its table, the sync state machine, grants, routes."""

import json

from aws_cdk.assertions import Match

from infra import constants

from .test_service_stack import _actions, _definition, _machine_id, _policy_of

SYNC = "BillPay-dev-payables-sync"


def test_the_payables_table_has_the_indexes_the_queries_use_and_a_ttl(dev):
    dev.state.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "companyId", "KeyType": "HASH"},
                {"AttributeName": "recordKey", "KeyType": "RANGE"},
            ],
            "LocalSecondaryIndexes": Match.array_with(
                [
                    {
                        "IndexName": "byDueDate",
                        "KeySchema": [
                            {"AttributeName": "companyId", "KeyType": "HASH"},
                            {"AttributeName": "dueDate", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    },
                    {
                        "IndexName": "byStatusDueDate",
                        "KeySchema": [
                            {"AttributeName": "companyId", "KeyType": "HASH"},
                            {"AttributeName": "statusDueDate", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    },
                ]
            ),
            "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )
    assert constants.OUTPUT_PAYABLES_TABLE in dev.state.to_json()["Outputs"]


def test_the_page_token_key_is_generated_never_written_in_the_template(dev):
    dev.state.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True}},
    )


def test_a_sync_run_loops_steps_waits_out_codat_and_retries_a_dead_lambda(dev):
    props = dev.service.to_json()["Resources"][_machine_id(dev.service, SYNC)]["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    states = _definition(dev.service, SYNC)["States"]
    step = states["SyncStep"]
    assert step["Next"] == "RunDone"
    retried = {e for r in step["Retry"] for e in r["ErrorEquals"]}
    assert {"CodatUnavailableError", "Sandbox.Timedout", "States.Timeout"} <= retried
    assert step["Catch"][0]["Next"] == "SyncFailed"
    choice = states["RunDone"]
    assert {c["Next"] for c in choice["Choices"]} == {"Synced", "WaitForCodat"}
    assert choice["Default"] == "SyncStep"
    assert states["WaitForCodat"] == {
        "Type": "Wait",
        "SecondsPath": "$.waitSeconds",
        "Next": "SyncStep",
    }
    assert constants.OUTPUT_PAYABLES_SYNC_STATE_MACHINE_ARN in dev.service.to_json()["Outputs"]


def test_the_sync_step_calls_codat_and_writes_the_table_not_its_indexes(dev):
    template = dev.service.to_json()["Resources"]
    (fn,) = [
        r
        for r in template.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Handler"] == constants.SYNC_PAYABLES_HANDLER
    ]
    env = fn["Properties"]["Environment"]["Variables"]
    assert {
        "PAYABLES_TABLE",
        "COMPANIES_TABLE",
        "CODAT_BASE_URL",
        "CODAT_API_KEY_SECRET_ARN",
    } <= set(env)
    statements = _policy_of(dev.service, "FunctionsSyncPayablesRole")
    payables = [s for s in statements if "PayablesTable" in json.dumps(s["Resource"])]
    assert payables
    assert all("index" not in json.dumps(s["Resource"]) for s in payables)
    assert "secretsmanager:GetSecretValue" in {a for s in statements for a in _actions(s)}


def test_the_api_queries_the_two_indexes_by_name_and_reads_the_page_token_key(dev):
    statements = _policy_of(dev.service, "FunctionsApiRole")
    (queries,) = [
        s
        for s in statements
        if "dynamodb:Query" in _actions(s) and "PayablesTable" in json.dumps(s["Resource"])
    ]
    resources = json.dumps(queries["Resource"])
    assert "/index/byDueDate" in resources
    assert "/index/byStatusDueDate" in resources
    assert "index/*" not in resources
    secrets = json.dumps(
        [s["Resource"] for s in statements if "secretsmanager:GetSecretValue" in _actions(s)]
    )
    assert "PageTokens" in secrets


def test_the_payables_routes_are_on_the_api_behind_iam(dev):
    methods = {
        i: m
        for i, m in dev.service.find_resources("AWS::ApiGateway::Method").items()
        if m["Properties"]["RestApiId"]["Ref"].startswith("ProductApi")
    }
    resources = dev.service.find_resources("AWS::ApiGateway::Resource")
    paths = {r["Properties"]["PathPart"] for r in resources.values()}
    assert {
        "bills",
        "{billId}",
        "attachments",
        "suppliers",
        "{supplierId}",
        "payment-accounts",
    } <= paths
    for method in methods.values():
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
    params = [m["Properties"].get("RequestParameters", {}) for m in methods.values()]
    assert {"method.request.path.companyId": True, "method.request.path.billId": True} in params


def test_a_run_starts_when_ready_on_every_read_of_the_books_and_late_bill_write(dev):
    dev.service.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["billpay"],
                "detail-type": [
                    "BillWriteFailed",
                    "BillWriteSucceeded",
                    "CompanyDataRead",
                    "CompanyReady",
                    "SupplierWriteFailed",
                    "SupplierWriteSucceeded",
                ],
            },
            "Targets": [Match.object_like({"RetryPolicy": {"MaximumRetryAttempts": 8}})],
        },
    )
    statements = _policy_of(dev.service, "FunctionsRequestPayablesSyncRole")
    starts = [s for s in statements if "states:StartExecution" in _actions(s)]
    assert starts
    assert "PayablesSync" in json.dumps(starts)
    # the ledger: a refused write fails the pending request (a Query and an UpdateItem)
    ledger = [s for s in statements if "dynamodb:UpdateItem" in _actions(s)]
    assert ledger
    assert "dynamodb:Query" in _actions(ledger[0])
    assert "PayablesTable" in json.dumps(ledger)
