"""Builds the CDK app. No AWS calls at synth time: everything comes from the stage config."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import StageConfig, load_stage
from infra.stacks.service_stack import ServiceStack
from infra.stacks.state_stack import StateStack


def build_app(
    *, outdir: str | None = "cdk.out", context: dict[str, Any] | None = None
) -> tuple[cdk.App, StateStack, ServiceStack]:
    app = cdk.App(outdir=outdir, context=context)
    overrides = app.node.try_get_context("config")
    config = load_stage(app.node.try_get_context("stage"), overrides)
    state, service = add_stacks(app, config)
    # Every AwsSolutions finding fails synth (and Template.from_stack in the infra tests); the few
    # accepted ones are acknowledged on their construct with a reason.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, state, service


def add_stacks(app: cdk.App, config: StageConfig) -> tuple[StateStack, ServiceStack]:
    env = cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    state = StateStack(
        app,
        f"{config.prefix}-State",
        config=config,
        env=env,
        termination_protection=config.retain_data,
        description="Codat Bill Pay integration: stateful resources (tables, secrets, event bus)",
    )
    service = ServiceStack(
        app,
        f"{config.prefix}-Service",
        config=config,
        state=state,
        env=env,
        description="Codat Bill Pay integration: API, functions, state machines, alarms",
    )
    for stack in (state, service):
        cdk.Tags.of(stack).add("project", "codat-billpay-aws")
        cdk.Tags.of(stack).add("stage", config.stage)
    return state, service


def cli_context(argv: list[str]) -> dict[str, Any] | None:
    """Context for a direct `python app.py [-c key=value ...]` run; None under the CDK CLI."""
    if "CDK_OUTDIR" in os.environ:  # set by the CDK CLI, which passes context itself
        return None
    cdk_json = Path(__file__).resolve().parents[1] / "cdk.json"
    context: dict[str, Any] = dict(json.loads(cdk_json.read_text()).get("context", {}))
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
