"""nag_name names a resource as cdk-nag does in a finding, in either synth form."""

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs

from infra.constructs.common import nag_name


def _execution_arn(stack):
    return stack.format_arn(
        service="states",
        resource="execution",
        resource_name="machine:*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def test_an_environment_agnostic_arn_names_its_pseudo_parameters():
    stack = cdk.Stack(cdk.App(), "Agnostic")
    assert nag_name(stack, _execution_arn(stack)) == (
        "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:machine:*"
    )


def test_a_concrete_environment_gives_the_literal_arn():
    app = cdk.App(context={"@aws-cdk/core:enablePartitionLiterals": True})
    stack = cdk.Stack(
        app, "Concrete", env=cdk.Environment(account="111122223333", region="eu-west-2")
    )
    assert nag_name(stack, _execution_arn(stack)) == (
        "arn:aws:states:eu-west-2:111122223333:execution:machine:*"
    )


def test_attributes_and_sub_placeholders_read_as_cdk_nag_prints_them():
    stack = cdk.Stack(cdk.App(), "Refs")
    queue = sqs.Queue(stack, "Queue")
    logical_id = stack.resolve(queue.node.default_child.logical_id)
    assert nag_name(stack, f"{queue.queue_arn}:*") == f"<{logical_id}.Arn>:*"
    assert nag_name(stack, queue.queue_url) == f"<{logical_id}>"
    assert nag_name(stack, cdk.Fn.sub("arn:${AWS::Partition}:s3:::bucket/*")) == (
        "arn:<AWS::Partition>:s3:::bucket/*"
    )
