from aws_cdk.assertions import Match

from infra import constants


def test_companies_table_is_encrypted_with_point_in_time_recovery(dev):
    dev.state.resource_count_is("AWS::DynamoDB::Table", 2)  # companies, payables
    dev.state.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "companyId", "KeyType": "HASH"}],
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


def test_codat_api_key_secret_and_event_bus_exist(dev):
    # The Codat API key and the page token key (test_payables_infra.py)
    dev.state.resource_count_is("AWS::SecretsManager::Secret", 2)
    dev.state.has_resource_properties("AWS::Events::EventBus", {"Name": "BillPay-dev-events"})


def test_outputs_have_stable_ids(dev):
    outputs = dev.state.to_json()["Outputs"]
    for output_id in (
        constants.OUTPUT_COMPANIES_TABLE,
        constants.OUTPUT_EVENT_BUS_NAME,
        constants.OUTPUT_CODAT_API_KEY_SECRET_ARN,
    ):
        assert output_id in outputs
