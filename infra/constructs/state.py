"""State that must survive a redeploy of the service: tables, secrets, the event bus."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from billpay.bills import repository as payables_table
from billpay.companies.repository import CODAT_COMPANY_INDEX
from billpay.payments import repository as payments_table
from billpay.webhooks.store import BY_COMPANY_INDEX, BY_DAY_INDEX
from infra.config import StageConfig
from infra.constructs.common import acknowledge, removal_policy

_S = dynamodb.AttributeType.STRING


def state_table(
    scope: Construct,
    config: StageConfig,
    *,
    partition_key: str,
    sort_key: str | None = None,
    time_to_live_attribute: str | None = None,
) -> dynamodb.Table:
    """A table as every table of this stack is: on demand, encrypted, point-in-time recovery,
    deletion-protected and retained where the stage keeps its data.

    Table, not TableV2: TableV2 synthesizes AWS::DynamoDB::GlobalTable, which buys nothing for a
    single-region kit and which the local cloud cannot deploy.
    """
    return dynamodb.Table(
        scope,
        "Table",
        partition_key=dynamodb.Attribute(name=partition_key, type=_S),
        sort_key=dynamodb.Attribute(name=sort_key, type=_S) if sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=time_to_live_attribute,
        deletion_protection=config.retain_data,
        removal_policy=removal_policy(config),
    )


class CompanyTable(Construct):
    """One item per SMB, keyed by the product's own company id, kept current from webhooks."""

    PARTITION_KEY = "companyId"

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = state_table(self, config, partition_key=self.PARTITION_KEY)
        # Webhooks name Codat's company id; a company whose Codat company carries no product tag
        # is found through this index (sparse: only companies Codat knows are in it).
        self.table.add_global_secondary_index(
            index_name=CODAT_COMPANY_INDEX,
            partition_key=dynamodb.Attribute(name="codatCompanyId", type=_S),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )


class WebhookEventsTable(Construct):
    """Every verified Codat webhook, keyed by its `webhook-id`: the dedupe record, the processing
    state (claim, outcome) and the replay store. Items expire (TTL) after the retention the
    functions set, which outlasts Codat's two-week replay window."""

    PARTITION_KEY = "webhookId"
    TTL_ATTRIBUTE = "expiresAt"

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = state_table(
            self,
            config,
            partition_key=self.PARTITION_KEY,
            time_to_live_attribute=self.TTL_ATTRIBUTE,
        )
        # Replay by time window (one partition per day received) and by company.
        for index, partition in ((BY_DAY_INDEX, "receivedDay"), (BY_COMPANY_INDEX, "companyId")):
            self.table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=partition, type=_S),
                sort_key=dynamodb.Attribute(name="receivedAt", type=_S),
                projection_type=dynamodb.ProjectionType.INCLUDE,
                non_key_attributes=["eventType", "status", self.TTL_ATTRIBUTE],
            )


class PayablesTable(Construct):
    """Per SMB: its bills, suppliers and payment accounts as Codat last reported them, the sync's
    watermarks, and the ledger of the product's writes (layout: billpay.bills.repository).

    Local secondary indexes (not global): the product reads one company's bills at a time, so its
    partition is the natural key; local indexes share the table's capacity, are strongly
    consistent, and cost no second copy of the partition key. The price is a 10 GB cap per company
    (items and indexes), some 5 million bills at about 600 bytes each (x3 with both indexes).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = state_table(
            self,
            config,
            partition_key=payables_table.PARTITION_KEY,
            sort_key=payables_table.SORT_KEY,
            time_to_live_attribute="expiresAt",
        )
        for index, attribute in (
            (payables_table.BY_DUE_DATE, "dueDate"),
            (payables_table.BY_STATUS_DUE_DATE, "statusDueDate"),
        ):
            self.table.add_local_secondary_index(
                index_name=index,
                sort_key=dynamodb.Attribute(name=attribute, type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )


class PaymentTable(Construct):
    """Every payment the product made through Codat, with its history, and which payment of a bill
    is in flight (billpay.payments.repository). The audit trail of money that moved: point-in-time
    recovery, retained and deletion-protected where the stage retains data."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = state_table(
            self,
            config,
            partition_key=payments_table.PARTITION_KEY,
            sort_key=payments_table.SORT_KEY,
        )


class PageTokenKey(Construct):
    """The key that signs the product API's page tokens, generated at deploy, never seen by anyone."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "Key",
            description=f"{config.prefix}: signs the page tokens of the product API's listings",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=removal_policy(config),
        )
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            (
                "Rotating it only invalidates the page tokens handed out before (a listing starts "
                "again); docs/operations.md describes rotating it by hand."
            ),
        )


class CodatSecrets(Construct):
    """The Codat API key. Its value is set by the operator (see docs/operations.md), never by code."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.api_key = secretsmanager.Secret(
            self,
            "ApiKey",
            description=(
                f"{config.prefix}: Codat API key (Codat portal > Developers > API keys). "
                "Replace the generated placeholder after the first deploy."
            ),
            removal_policy=removal_policy(config),
        )
        acknowledge(
            self.api_key,
            "AwsSolutions-SMG4",
            (
                "Codat API keys are issued and revoked in the Codat portal; no Lambda can rotate "
                "them. docs/operations.md describes the manual rotation."
            ),
        )
        self.webhook_secret = secretsmanager.Secret(
            self,
            "WebhookSecret",
            description=(
                f"{config.prefix}: Codat webhook signing secret(s) (Codat portal > Settings > "
                "Webhooks > the endpoint > Signing secret): a whsec_ value, or during a rotation "
                '{"current": "whsec_...", "previous": "whsec_..."}. Replace the generated '
                "placeholder after the first deploy."
            ),
            removal_policy=removal_policy(config),
        )
        acknowledge(
            self.webhook_secret,
            "AwsSolutions-SMG4",
            (
                "The signing secret is issued by Codat for the webhook endpoint; no Lambda can "
                "rotate it. docs/operations.md describes the rotation with two secrets accepted."
            ),
        )


class IntegrationEventBus(Construct):
    """Where the product backend listens: one bus for every Bill Pay domain event."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=f"{config.prefix}-events")
