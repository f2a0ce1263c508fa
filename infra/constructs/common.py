"""Small settings every construct applies the same way."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from infra.config import StageConfig

_RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def log_retention(config: StageConfig) -> logs.RetentionDays:
    return _RETENTION[config.log_retention_days]


def removal_policy(config: StageConfig) -> RemovalPolicy:
    """Retain stateful resources where the stage says so; dev stacks clean up after themselves."""
    return RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY


def log_group(scope: Construct, construct_id: str, config: StageConfig) -> logs.LogGroup:
    """A log group with the stage's retention, created before anything writes to it."""
    return logs.LogGroup(
        scope,
        construct_id,
        retention=log_retention(config),
        removal_policy=removal_policy(config),
    )


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept one cdk-nag finding on one construct (and its children), with the reason on record."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of a construct's resource, as cdk-nag names it in findings."""
    element = construct.node.default_child
    assert isinstance(element, CfnElement), f"{construct.node.path} has no CloudFormation resource"
    return str(Stack.of(construct).resolve(element.logical_id))


def table_reference(scope: Construct, construct_id: str, table: dynamodb.ITable) -> dynamodb.ITable:
    """`table` as seen by functions that need the table and none of its indexes.

    CDK's grants on a table with indexes add `<table-arn>/index/*`; granting through this
    reference gives the table alone, and a function that queries an index is granted that index
    by name (see `grant_index_query`).
    """
    return dynamodb.Table.from_table_arn(scope, construct_id, table.table_arn)


def grant_index_query(grantee: iam.IGrantable, table: dynamodb.ITable, index_name: str) -> None:
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["dynamodb:Query"],
        resource_arns=[f"{table.table_arn}/index/{index_name}"],
    )
