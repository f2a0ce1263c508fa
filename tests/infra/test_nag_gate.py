"""cdk-nag is a gate, not a report: prove that a finding fails synthesis, and that every stage
passes it in both synth forms with the same acknowledgments."""

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from tests.infra.conftest import ACCOUNT, FORMS, REGION, STAGE_NAMES


def _describe_execution_resource(template):
    """The resource of the API role's one wildcard grant: the ARN whose form differs."""
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            if "states:DescribeExecution" in (actions if isinstance(actions, list) else [actions]):
                return statement["Resource"]
    raise AssertionError("no states:DescribeExecution grant")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_every_stage_synthesizes_in_both_forms_with_no_unacknowledged_finding(
    stage_synth, stage, form
):
    # Given the app synthesized as the CLI would, with or without an account and region
    # (Template.from_stack in the fixture raises ValidationFailed on any finding)
    synth = stage_synth(stage, form)
    # Then the acknowledged wildcard really is in the form under test
    resource = _describe_execution_resource(synth.service)
    if form == "concrete":
        assert synth.service_stack.account == ACCOUNT
        assert (
            resource == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:BillPay-{stage}-onboarding:*"
        )
    else:
        assert cdk.Token.is_unresolved(synth.service_stack.account)
        assert {"Ref": "AWS::AccountId"} in resource["Fn::Join"][1]
        assert f":execution:BillPay-{stage}-onboarding:*" in resource["Fn::Join"][1]


def test_a_finding_fails_synthesis(tmp_path):
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Insecure")
    sqs.Queue(stack, "NoDeadLetterQueueNoTls")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        Template.from_stack(stack)
