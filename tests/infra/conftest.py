"""Synthesize each stage once per session, with asset bundling skipped (the layer build is covered
by test_layer.py on the real cdk.out). Template.from_stack runs cdk-nag: a finding fails the fixture."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra.app import build_app


@dataclass(frozen=True)
class Synth:
    state: Template
    service: Template


def synth(outdir: Path, stage: str) -> Synth:
    _, state, service = build_app(
        outdir=str(outdir), context={"stage": stage, "aws:cdk:bundling-stacks": []}
    )
    return Synth(state=Template.from_stack(state), service=Template.from_stack(service))


@pytest.fixture(scope="session")
def stage_synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Synth]:
    cache: dict[str, Synth] = {}

    def get(stage: str) -> Synth:
        if stage not in cache:
            cache[stage] = synth(tmp_path_factory.mktemp(f"cdk-{stage}"), stage)
        return cache[stage]

    return get


@pytest.fixture(scope="session")
def dev(stage_synth: Callable[[str], Synth]) -> Synth:
    return stage_synth("dev")
