"""Builds the CDK app. No AWS calls at synth time: everything comes from the stage config."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import StageConfig, load_stage
from infra.constructs.common import DropImpliedDependsOn
from infra.stacks.service_stack import ServiceStack
from infra.stacks.state_stack import StateStack

ROOT = Path(__file__).resolve().parents[1]
CDK_JSON = ROOT / "cdk.json"


def build_app(
    *, outdir: str | None = None, context: dict[str, Any] | None = None
) -> tuple[cdk.App, StateStack, ServiceStack]:
    """The app with both stacks of the stage in its context (`stage`, default dev).

    `outdir` defaults to where the CDK CLI asks (CDK_OUTDIR: its `--output`, else cdk.json's
    "output"); run directly, to cdk.json's "output" in the repository. Under the CLI the context
    comes from the CLI itself; run directly, pass `cli_context(...)` (cdk.json's context + `-c`).
    """
    app = cdk.App(outdir=outdir or assembly_dir(), context=context)
    overrides = app.node.try_get_context("config")
    config = load_stage(app.node.try_get_context("stage"), overrides)
    state, service = add_stacks(app, config)
    # Every AwsSolutions finding fails synth (and Template.from_stack in the infra tests); the few
    # accepted ones are acknowledged on their construct with a reason.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    cdk.Aspects.of(app).add(DropImpliedDependsOn())
    return app, state, service


def add_stacks(app: cdk.App, config: StageConfig) -> tuple[StateStack, ServiceStack]:
    # The CDK CLI sets these two whenever it finds credentials: every `cdk deploy` synthesizes the
    # stacks for a concrete account and region, and ARNs become literal. Without them (a direct
    # `python app.py`, the local cloud) the stacks are environment-agnostic. Both forms must pass
    # cdk-nag: the infra tests synthesize both (tests/infra/conftest.py).
    env = cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    # Stack tags (CloudFormation copies them onto every resource it creates) are set on the stacks
    # themselves: with @aws-cdk/core:explicitStackTags, Tags.of(stack) below tags the template's
    # resources only.
    tags = {"project": "codat-billpay-aws", "stage": config.stage}
    state = StateStack(
        app,
        f"{config.prefix}-State",
        config=config,
        env=env,
        tags=tags,
        termination_protection=config.retain_data,
        description="Codat Bill Pay integration: stateful resources (tables, secrets, event bus)",
    )
    service = ServiceStack(
        app,
        f"{config.prefix}-Service",
        config=config,
        state=state,
        env=env,
        tags=tags,
        description="Codat Bill Pay integration: API, functions, state machines, alarms",
    )
    for stack in (state, service):
        for key, value in tags.items():
            cdk.Tags.of(stack).add(key, value)
    return state, service


def assembly_dir() -> str:
    """Where the cloud assembly goes: the CDK CLI names it in CDK_OUTDIR (its `--output`, else
    cdk.json's "output") and reads the manifest from there, so it must win over the default."""
    return os.environ.get("CDK_OUTDIR") or str(ROOT / _cdk_json().get("output", "cdk.out"))


def project_context() -> dict[str, Any]:
    """cdk.json's context (stage default and feature flags), as the CDK CLI would pass it.

    One flag there needs its reason written down, and JSON has no comments:
    `@aws-cdk/core:defaultCrossStackReferences` is "strong", set explicitly (unset, CDK warns on
    every synth). The State stack exports the table's, secret's and bus's names and ARNs and the
    Service stack imports them (Fn::ImportValue). Strong references make CloudFormation refuse to
    delete or replace an exported resource while the Service stack still uses it: the stack that
    holds customers' data is the one protected, which is the point of the split. "weak"
    (Fn::GetStackOutput) would let the State stack drop a table under a running service, and the
    local cloud's CloudFormation (moto) resolves Fn::ImportValue but not Fn::GetStackOutput. To
    retire an exported resource later, weaken that one reference first
    (`CrossStackReferences.of(resource).produce(ReferenceStrength.BOTH)`, deploy, then remove).
    """
    return dict(_cdk_json().get("context", {}))


def _cdk_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(CDK_JSON.read_text())
    return loaded


def cli_context(argv: list[str]) -> dict[str, Any] | None:
    """Context for a direct `python app.py [-c key=value ...]` run; None under the CDK CLI."""
    if "CDK_OUTDIR" in os.environ:  # set by the CDK CLI, which passes context itself
        return None
    context = project_context()
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--context"):
            pair = next(args, "")
        elif arg.startswith("--context="):
            pair = arg.removeprefix("--context=")
        else:
            raise SystemExit(f"unexpected argument {arg!r}: use -c key=value")
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"bad context {pair!r}: use -c key=value")
        context[key] = value
    return context
