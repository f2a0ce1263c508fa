"""cfn-lint finds no error and no warning in any synthesized template (stage x form)."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pytest_socket import disable_socket, enable_socket

from tests.infra.cfn_lint import findings
from tests.infra.conftest import FORMS, REGION, STAGE_NAMES


@contextmanager
def _offline() -> Iterator[None]:
    """cfn-lint must work from the specs it ships: any socket it opened would fail the test."""
    disable_socket()
    try:
        yield
    finally:
        enable_socket()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_templates_have_no_cfn_lint_error_or_warning(stage_synth, stage, form):
    synth = stage_synth(stage, form)  # synthesized before sockets are blocked
    templates = {"state": synth.state.to_json(), "service": synth.service.to_json()}
    with _offline():
        for name, template in templates.items():
            assert findings(template, REGION) == [], name


def test_cfn_lint_reports_a_depends_on_that_a_reference_already_implies():
    template = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Subscription": {
                "Type": "AWS::SNS::Subscription",
                "DependsOn": ["Topic"],
                "Properties": {
                    "Protocol": "sqs",
                    "TopicArn": {"Ref": "Topic"},
                    "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
                },
            },
        }
    }
    with _offline():
        assert [finding.split()[0] for finding in findings(template)] == ["W3005"]
