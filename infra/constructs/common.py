"""Small settings every construct applies the same way."""

from __future__ import annotations

import json
from typing import Any

import jsii
from aws_cdk import (
    Acknowledgment,
    CfnResource,
    IAspect,
    IListProducer,
    IResolveContext,
    Lazy,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
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


def nag_name(scope: IConstruct, value: str) -> str:
    """A policy resource (or managed policy ARN) as cdk-nag names it in a finding, for the
    `[Resource::...]` or `[Policy::...]` part of an acknowledgment.

    The value is resolved in scope's stack, as cdk-nag resolves it, then flattened as cdk-nag's
    `flattenCfnReference` does. So the name follows the stack's environment: an environment-agnostic
    stack gives `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:...`, one with a concrete
    account and region (the CDK CLI sets them whenever it finds credentials) gives the literal ARN.
    An acknowledgment written by hand in either form fails synth in the other.
    """
    return _flatten(Stack.of(scope).resolve(value))


def _flatten(node: Any) -> str:
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")  # Fn::Sub's ${X} reads as <X>
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(_flatten(item) for item in items)
        if "Fn::Sub" in node:
            return _flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return _flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))  # cdk-nag's fallback: JSON.stringify


@jsii.implements(IAspect)
class DropImpliedDependsOn:
    """Renders a function's or state machine's DependsOn without the resources its own properties
    already reference: a Ref or GetAtt orders those anyway (cfn-lint W3005).

    CDK's Function and StateMachine call `node.add_dependency(role)`, which lists the role's
    policy (needed: nothing else orders it before the first call) and the role itself (already
    ordered by the GetAtt of its ARN). CDK turns construct dependencies into DependsOn while it
    prepares the template, after every aspect ran, so the list is computed when it is rendered.
    Other resources keep CDK's rendering (and order) untouched; cfn-lint in `make test` reports
    any other type that needs the same.
    """

    TYPES = (lambda_.CfnFunction, sfn.CfnStateMachine)

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, self.TYPES):
            node.add_override(
                "DependsOn", Lazy.uncached_list(_ExplicitDependsOn(node), omit_empty=True)
            )


@jsii.implements(IListProducer)
class _ExplicitDependsOn:
    def __init__(self, resource: CfnResource) -> None:
        self._resource = resource

    def produce(self, context: IResolveContext) -> list[str] | None:
        stack = Stack.of(self._resource)
        implied = _referenced_ids(stack.resolve(self._resource._cfn_properties))
        targets = sorted(
            (
                target
                for target in self._resource.obtain_dependencies()
                if isinstance(target, CfnResource) and Stack.of(target).node.path == stack.node.path
            ),
            key=lambda target: target.node.path,
        )
        ids = [str(stack.resolve(target.logical_id)) for target in targets]
        return [logical_id for logical_id in ids if logical_id not in implied] or None


def _referenced_ids(node: Any) -> set[str]:
    """Logical ids a resolved CloudFormation value points at through Ref or Fn::GetAtt."""
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("Ref"), str):
            found.add(node["Ref"])
        get_att = node.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att and isinstance(get_att[0], str):
            found.add(get_att[0])
        for value in node.values():
            found |= _referenced_ids(value)
    elif isinstance(node, list):
        for value in node:
            found |= _referenced_ids(value)
    return found


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
