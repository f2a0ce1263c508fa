"""Synthesize each stage once per session and form, with asset bundling skipped (the layer build is
covered by test_layer.py on the real cdk.out, and test_cdk_cli.py through the CDK CLI).
Template.from_stack runs cdk-nag: a finding fails the fixture.

Two forms, as a deploying engineer meets them: "agnostic" (no account or region: a direct
`python app.py`, `make synth`, the local cloud) and "concrete" (CDK_DEFAULT_ACCOUNT and
CDK_DEFAULT_REGION set, as the CDK CLI sets them whenever it finds credentials: ARNs become
literal, and cdk-nag names resources differently).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.app import build_app, project_context
from infra.config import STAGES
from infra.stacks.service_stack import ServiceStack
from infra.stacks.state_stack import StateStack

ACCOUNT = "111122223333"
REGION = "eu-west-2"
FORMS = ("agnostic", "concrete")
STAGE_NAMES = tuple(STAGES)


@dataclass(frozen=True)
class Synth:
    form: str
    app: cdk.App
    state_stack: StateStack
    service_stack: ServiceStack
    state: Template
    service: Template

    @property
    def stacks(self) -> tuple[StateStack, ServiceStack]:
        return self.state_stack, self.service_stack


def synth(
    outdir: Path, stage: str, form: str = "agnostic", context: dict[str, Any] | None = None
) -> Synth:
    """Build and synthesize the app as the CLI would: cdk.json's context (feature flags included)
    plus the stage, and the environment variables the CLI sets (or not)."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}: expected one of {FORMS}")
    with pytest.MonkeyPatch.context() as env:
        for name, value in (("CDK_DEFAULT_ACCOUNT", ACCOUNT), ("CDK_DEFAULT_REGION", REGION)):
            if form == "concrete":
                env.setenv(name, value)
            else:
                env.delenv(name, raising=False)
        app, state, service = build_app(
            outdir=str(outdir),
            context={
                **(project_context() if context is None else context),
                "stage": stage,
                "aws:cdk:bundling-stacks": [],
            },
        )
        return Synth(
            form=form,
            app=app,
            state_stack=state,
            service_stack=service,
            state=Template.from_stack(state),
            service=Template.from_stack(service),
        )


@pytest.fixture(scope="session")
def stage_synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Synth]:
    cache: dict[tuple[str, str], Synth] = {}

    def get(stage: str, form: str = "agnostic") -> Synth:
        if (stage, form) not in cache:
            cache[stage, form] = synth(tmp_path_factory.mktemp(f"cdk-{stage}-{form}"), stage, form)
        return cache[stage, form]

    return get


@pytest.fixture(scope="session")
def dev(stage_synth: Callable[..., Synth]) -> Synth:
    return stage_synth("dev")
