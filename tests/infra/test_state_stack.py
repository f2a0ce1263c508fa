from aws_cdk.assertions import Match

from infra import constants


def test_companies_table_is_encrypted_with_point_in_time_recovery(dev):
    dev.state.resource_count_is(
        "AWS::DynamoDB::Table", 4
    )  # companies, webhook events, payables, payments
    dev.state.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "companyId", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [
                Match.object_like(
                    {
                        "IndexName": "byCodatCompanyId",
                        "KeySchema": [{"AttributeName": "codatCompanyId", "KeyType": "HASH"}],
                    }
                )
            ],
            "SSESpecification": {"SSEEnabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )


def test_dev_data_is_disposable_but_prod_data_is_retained(dev, stage_synth):
    dev.state.has_resource("AWS::DynamoDB::Table", {"DeletionPolicy": "Delete"})
    prod = stage_synth("prod")
    prod.state.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_like({"DeletionProtectionEnabled": True}),
        },
    )
    prod.state.has_resource("AWS::SecretsManager::Secret", {"DeletionPolicy": "Retain"})


def test_webhook_events_are_kept_encrypted_with_a_ttl_and_replay_indexes(dev):
    dev.state.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "webhookId", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "GlobalSecondaryIndexes": [
                Match.object_like({"IndexName": "byDayReceived"}),
                Match.object_like({"IndexName": "byCompany"}),
            ],
        },
    )


def test_codat_api_key_and_webhook_secrets_and_event_bus_exist(dev):
    # + the page token key (test_payables_infra.py)
    dev.state.resource_count_is("AWS::SecretsManager::Secret", 3)
    dev.state.has_resource_properties("AWS::Events::EventBus", {"Name": "BillPay-dev-events"})


def test_outputs_have_stable_ids(dev):
    outputs = dev.state.to_json()["Outputs"]
    for output_id in (
        constants.OUTPUT_COMPANIES_TABLE,
        constants.OUTPUT_EVENT_BUS_NAME,
        constants.OUTPUT_CODAT_API_KEY_SECRET_ARN,
        constants.OUTPUT_WEBHOOK_SECRET_ARN,
        constants.OUTPUT_WEBHOOK_EVENTS_TABLE,
    ):
        assert output_id in outputs
