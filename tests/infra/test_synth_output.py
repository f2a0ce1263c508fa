"""Synth is quiet: no CDK warning or error annotation on any stack, in any stage or form."""

import pytest
from aws_cdk.assertions import Annotations, Match

from infra.app import project_context
from tests.infra.conftest import FORMS, STAGE_NAMES, synth


def _annotations(stack):
    annotations = Annotations.from_stack(stack)
    return [
        *annotations.find_warning("*", Match.any_value()),
        *annotations.find_error("*", Match.any_value()),
    ]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_synth_reports_no_warning(stage_synth, stage, form):
    for stack in stage_synth(stage, form).stacks:
        assert [str(a.entry.data) for a in _annotations(stack)] == []


def test_the_check_sees_the_warning_an_unset_flag_causes(tmp_path):
    # Given cdk.json's context without the cross-stack reference strength
    context = project_context()
    del context["@aws-cdk/core:defaultCrossStackReferences"]
    # When the app is synthesized
    synthesized = synth(tmp_path, "dev", context=context)
    # Then CDK warns on the stack that imports the State stack's exports
    warnings = [str(a.entry.data) for a in _annotations(synthesized.service_stack)]
    assert any("@aws-cdk/core:defaultCrossStackReferences" in w for w in warnings), warnings
