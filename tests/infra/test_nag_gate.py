"""cdk-nag is a gate, not a report: prove that a finding fails synthesis."""

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks


def test_both_stages_synthesize_with_no_unacknowledged_finding(stage_synth):
    for stage in ("dev", "prod"):
        synth = stage_synth(stage)
        assert synth.state.find_resources("AWS::DynamoDB::Table")


def test_a_finding_fails_synthesis(tmp_path):
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Insecure")
    sqs.Queue(stack, "NoDeadLetterQueueNoTls")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        Template.from_stack(stack)
