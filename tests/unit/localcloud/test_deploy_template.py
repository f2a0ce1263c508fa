"""Template preparation and cloud-assembly reading: what moto is given, and what is refused."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from io import BytesIO

import pytest

from localcloud.deploy import (
    DeployError,
    Handling,
    prepare_template,
    publish_assets,
    read_assembly,
    unsupported_types,
    zip_directory,
)

ACCOUNT, REGION = "123456789012", "eu-west-2"


def _prepare(template, emulated=None):
    return prepare_template("Stack", template, ACCOUNT, REGION, emulated)


def test_stripped_resources_are_removed_and_references_to_them_resolved():
    template = {
        "Resources": {
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "a"}},
            "Account": {"Type": "AWS::ApiGateway::Account", "Properties": {}},
            "Stage": {
                "Type": "AWS::ApiGateway::Stage",
                "Properties": {"StageName": "dev", "RestApiId": {"Ref": "Api"}},
                "DependsOn": "Account",
            },
            "Acl": {"Type": "AWS::WAFv2::WebACL", "Properties": {}},
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"Tags": [{"Key": "acl", "Value": {"Fn::GetAtt": ["Acl", "Arn"]}}]},
                "DependsOn": ["Acl", "Api"],
            },
            "Meta": {"Type": "AWS::CDK::Metadata", "Properties": {}},
        },
        "Outputs": {
            "Url": {"Value": {"Fn::Join": ["", ["https://x/", {"Ref": "Stage"}, "/"]]}},
            "Sub": {"Value": {"Fn::Sub": "${Stage}-${Acl.Arn}-${Api}-${AWS::Region}"}},
            "SubVars": {"Value": {"Fn::Sub": ["${Stage}:${Local}", {"Local": {"Ref": "Stage"}}]}},
        },
    }
    prepared = _prepare(template)
    assert set(prepared.body["Resources"]) == {"Api", "Queue"}
    acl_arn = f"arn:aws:wafv2:{REGION}:{ACCOUNT}:localcloud/Acl"
    queue = prepared.body["Resources"]["Queue"]
    assert queue["Properties"]["Tags"][0]["Value"] == acl_arn
    assert queue["DependsOn"] == ["Api"]
    outputs = prepared.body["Outputs"]
    assert outputs["Url"]["Value"]["Fn::Join"][1][1] == "dev"
    assert outputs["Sub"]["Value"]["Fn::Sub"] == f"dev-{acl_arn}-${{Api}}-${{AWS::Region}}"
    assert outputs["SubVars"]["Value"]["Fn::Sub"] == ["dev:${Local}", {"Local": "dev"}]
    handled = {i.logical_id: i.handling for i in prepared.handled}
    assert handled == {
        "Account": Handling.STRIP,
        "Stage": Handling.EMULATE,
        "Acl": Handling.STRIP,
        "Meta": Handling.STRIP,
    }
    assert [logical_id for logical_id, _ in prepared.post_create] == ["Stage"]
    # The caller's template is left as synthesized.
    assert "Account" in template["Resources"]


def test_emulated_secret_references_become_its_real_arn():
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:Key-abc"
    template = {
        "Resources": {
            "Key": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Environment": {"Variables": {"SECRET": {"Ref": "Key"}}}},
            },
        }
    }
    prepared = _prepare(template, {"Key": arn})
    variables = prepared.body["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]
    assert variables == {"SECRET": arn}


def test_unknown_types_stop_the_deploy_naming_each_type():
    template = {
        "Resources": {
            "A": {"Type": "AWS::AppSync::GraphQLApi", "Properties": {}},
            "B": {"Type": "AWS::Pipes::Pipe", "Properties": {}},
            "C": {"Type": "Custom::LogRetention", "Properties": {}},
            "D": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        }
    }
    assert unsupported_types(template) == [
        "AWS::AppSync::GraphQLApi",
        "AWS::Pipes::Pipe",
        "Custom::LogRetention",
    ]
    with pytest.raises(DeployError, match=r"AWS::AppSync::GraphQLApi, AWS::Pipes::Pipe"):
        _prepare(template)


def test_stage_name_must_be_literal():
    template = {
        "Resources": {
            "Stage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"StageName": {"Ref": "P"}}}
        }
    }
    with pytest.raises(DeployError, match="StageName"):
        _prepare(template)


def test_kms_key_tags_are_given_in_the_shape_moto_reads():
    template = {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"Tags": [{"Key": "k", "Value": "v"}]}}
        }
    }
    prepared = _prepare(template)
    assert prepared.body["Resources"]["Key"]["Properties"]["Tags"] == [
        {"TagKey": "k", "TagValue": "v"}
    ]


def test_event_bus_ref_is_its_name():
    template = {
        "Resources": {
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "my-bus"}},
        },
        "Outputs": {"BusName": {"Value": {"Ref": "Bus"}}},
    }
    prepared = _prepare(template)
    assert prepared.body["Outputs"]["BusName"]["Value"] == "my-bus"
    assert "Bus" in prepared.body["Resources"]


def _write_assembly(root, stacks):
    artifacts = {}
    for name, dependencies in stacks.items():
        (root / f"{name}.template.json").write_text(json.dumps({"Resources": {}}))
        (root / f"{name}.assets.json").write_text(json.dumps({"files": {}, "dockerImages": {}}))
        artifacts[f"{name}.assets"] = {
            "type": "cdk:asset-manifest",
            "properties": {"file": f"{name}.assets.json"},
        }
        artifacts[name] = {
            "type": "aws:cloudformation:stack",
            "properties": {"templateFile": f"{name}.template.json"},
            "dependencies": [*dependencies, f"{name}.assets"],
        }
    (root / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))


def test_stacks_come_dependencies_first(tmp_path):
    _write_assembly(
        tmp_path, {"A-Service": ["B-State", "C-Shared"], "B-State": ["C-Shared"], "C-Shared": []}
    )
    stacks = read_assembly(tmp_path)
    assert [s.name for s in stacks] == ["C-Shared", "B-State", "A-Service"]
    assert stacks[2].asset_manifests == (tmp_path / "A-Service.assets.json",)


def test_dependency_cycles_are_refused(tmp_path):
    _write_assembly(tmp_path, {"A": ["B"], "B": ["A"]})
    with pytest.raises(DeployError, match="cycle"):
        read_assembly(tmp_path)


def test_missing_assembly_says_to_synthesize(tmp_path):
    with pytest.raises(DeployError, match="make synth"):
        read_assembly(tmp_path)


def test_directory_zip_is_reproducible_sorted_and_keeps_modes(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "b.py").write_text("b = 1\n")
    (tmp_path / "a.py").write_text("a = 1\n")
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    first = zip_directory(tmp_path)
    os.utime(tmp_path / "a.py", (0, 0))
    assert zip_directory(tmp_path) == first
    with zipfile.ZipFile(BytesIO(first)) as archive:
        assert archive.namelist() == ["a.py", "pkg/b.py", "run.sh"]
        info = archive.getinfo("run.sh")
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert stat.S_IMODE(info.external_attr >> 16) == 0o755
        assert archive.read("pkg/b.py") == b"b = 1\n"


def test_docker_image_assets_are_refused_before_anything_is_uploaded(tmp_path):
    manifest = tmp_path / "S.assets.json"
    manifest.write_text(json.dumps({"files": {}, "dockerImages": {"x": {}}}))

    def no_clients(service):
        raise AssertionError("nothing may be uploaded")

    with pytest.raises(DeployError, match="Docker"):
        publish_assets(no_clients, manifest, ACCOUNT, REGION)


def test_mock_method_integrations_get_the_fields_moto_requires():
    template = {
        "Resources": {
            "Options": {
                "Type": "AWS::ApiGateway::Method",
                "Properties": {"HttpMethod": "OPTIONS", "Integration": {"Type": "MOCK"}},
            },
            "Bare": {"Type": "AWS::ApiGateway::Method", "Properties": {"HttpMethod": "GET"}},
        }
    }
    resources = _prepare(template).body["Resources"]
    assert resources["Options"]["Properties"]["Integration"] == {
        "Type": "MOCK",
        "IntegrationHttpMethod": "OPTIONS",
        "Uri": "",
    }
    assert resources["Bare"]["Properties"]["Integration"]["Type"] == "MOCK"
    # The synthesized template itself, which the local API reads, is untouched.
    assert (
        "IntegrationHttpMethod" not in template["Resources"]["Options"]["Properties"]["Integration"]
    )
