"""The product backend's REST API: IAM-authorized, validated at the edge, logged, throttled, WAF'd."""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

# The gateway rejects a malformed body before Lambda runs; the function validates it again with the
# same pattern, for calls that do not come through the gateway.
from billpay.companies.models import COMPANY_ID_PATTERN
from billpay.onboarding.models import (
    MAX_TAGS,
    NAME_MAX_LENGTH,
    PLATFORMS,
    REDIRECT_URL_MAX_LENGTH,
    TAG_VALUE_MAX_LENGTH,
)
from infra import constants
from infra.config import StageConfig
from infra.constructs.common import acknowledge, log_group, nag_name


class ProductApi(Construct):
    """REST API the product backend calls with SigV4 (AWS_IAM) to onboard SMBs and pay bills."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        handler: lambda_.IFunction,
        codat_handler: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = log_group(self, "AccessLogs", config)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{config.prefix}-api",
            description="Codat Bill Pay integration: product backend API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies carry SMB financial data
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
            ),
            default_method_options=apigw.MethodOptions(
                authorization_type=apigw.AuthorizationType.IAM
            ),
        )
        self._acknowledge_account_role()
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        integration = apigw.LambdaIntegration(handler)
        # The routes that call Codat go to the function that imports its SDK (billpay.api).
        codat_integration = apigw.LambdaIntegration(codat_handler)

        start_onboarding = self.api.add_model(
            "StartOnboarding",
            content_type="application/json",
            schema=start_onboarding_schema(),
        )
        company_id = {"method.request.path.companyId": True}
        companies = self.api.root.add_resource(constants.ROUTE_COMPANIES)
        companies.add_method(
            "POST",
            integration,
            request_validator=validator,
            request_models={"application/json": start_onboarding},
        )
        company = companies.add_resource("{companyId}")
        company.add_method(
            "GET", integration, request_validator=validator, request_parameters=company_id
        )
        company.add_method(  # offboarding unlinks the connection at Codat
            "DELETE", codat_integration, request_validator=validator, request_parameters=company_id
        )
        company.add_resource(constants.ROUTE_RELINK).add_method(
            "POST", integration, request_validator=validator, request_parameters=company_id
        )

        # Payments (billpay.payments): the bill's resources may exist already (the bills routes).
        bills = company.get_resource(constants.ROUTE_BILLS) or company.add_resource(
            constants.ROUTE_BILLS
        )
        bill = bills.get_resource("{billId}") or bills.add_resource("{billId}")
        bill_ids = {**company_id, "method.request.path.billId": True}
        payments = bill.add_resource(constants.ROUTE_PAYMENTS)
        payments.add_method(
            "POST",
            integration,
            request_validator=validator,
            request_parameters=bill_ids,
            request_models={
                "application/json": self.api.add_model(
                    "PayBill", content_type="application/json", schema=pay_bill_schema()
                )
            },
        )
        payments.add_resource("{paymentId}").add_method(
            "GET",
            integration,
            request_validator=validator,
            request_parameters={**bill_ids, "method.request.path.paymentId": True},
        )
        # Other constructs add their routes under a company (infra/constructs/bills.py).
        self.company = company
        self.integration = integration
        self.codat_integration = codat_integration
        self.validator = validator
        self._add_waf(config)

    def _acknowledge_account_role(self) -> None:
        role = self.api.node.find_child("CloudWatchRole")
        policy = iam.ManagedPolicy.from_aws_managed_policy_name(
            "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM4[Policy::{nag_name(role, policy.managed_policy_arn)}]",
            (
                "The account-level API Gateway logging role; AWS documents this managed policy "
                "as the one to attach, and it grants only CloudWatch Logs writes."
            ),
        )
        acknowledge(
            self.api,
            "AwsSolutions-COG4",
            (
                "Callers are the product's own backend services, authenticated with SigV4 "
                "(AWS_IAM); there are no end users, so there is no Cognito user pool."
            ),
        )

    def _add_waf(self, config: StageConfig) -> None:
        def managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=name
                    )
                ),
                visibility_config=waf_visibility(name),
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=waf_visibility(f"{config.prefix}-api"),
            rules=[
                managed("AWSManagedRulesCommonRuleSet", 1),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 2),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )


def start_onboarding_schema() -> apigw.JsonSchema:
    """POST /companies's body at the gateway: the shape of billpay.onboarding.models.StartOnboarding
    (which the function applies again, with the rules a JSON schema cannot state: the name must
    keep a character Codat accepts, the billpayCompanyId tag is reserved)."""
    string = apigw.JsonSchemaType.STRING
    return apigw.JsonSchema(
        schema=apigw.JsonSchemaVersion.DRAFT4,
        type=apigw.JsonSchemaType.OBJECT,
        required=["companyId", "name", "platformKey"],
        additional_properties=False,
        properties={
            "companyId": apigw.JsonSchema(type=string, pattern=COMPANY_ID_PATTERN),
            "name": apigw.JsonSchema(type=string, min_length=1, max_length=NAME_MAX_LENGTH),
            "platformKey": apigw.JsonSchema(type=string, enum=sorted(PLATFORMS)),
            "redirectUrl": apigw.JsonSchema(
                type=string, pattern="^https?://", max_length=REDIRECT_URL_MAX_LENGTH
            ),
            "tags": apigw.JsonSchema(
                type=apigw.JsonSchemaType.OBJECT,
                max_properties=MAX_TAGS,
                additional_properties=apigw.JsonSchema(
                    type=string, max_length=TAG_VALUE_MAX_LENGTH
                ),
            ),
        },
    )


def pay_bill_schema() -> apigw.JsonSchema:
    """The body of POST .../bills/{billId}/payments at the gateway: its shape only. The function
    applies billpay.payments.models.PaymentRequest, whose messages say what is wrong with an
    amount, a date or an id (the gateway can only say "Invalid request body")."""
    string, number = apigw.JsonSchemaType.STRING, apigw.JsonSchemaType.NUMBER
    return apigw.JsonSchema(
        schema=apigw.JsonSchemaVersion.DRAFT4,
        type=apigw.JsonSchemaType.OBJECT,
        required=["paymentId", "amount", "date", "accountId"],
        additional_properties=False,
        properties={
            "paymentId": apigw.JsonSchema(type=string),
            "amount": apigw.JsonSchema(type=[number, string]),
            "date": apigw.JsonSchema(type=string),
            "accountId": apigw.JsonSchema(type=string),
            "reference": apigw.JsonSchema(type=string),
            "currencyRate": apigw.JsonSchema(type=[number, string]),
        },
    )


def waf_visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
