"""Deploy a CDK cloud assembly (cdk.out) into moto through moto's CloudFormation.

What `cdk deploy` does, done against moto: the bootstrap bucket and version parameter, the file
assets uploaded per `<Stack>.assets.json`, then each stack created in dependency order from its
synthesized template. The resource types moto's CloudFormation lacks are handled explicitly (see
HANDLED_TYPES): stripped with a logged reason, or emulated through the service API. A type that is
neither supported by moto nor handled here stops the deploy with its name, never silently dropped.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import re
import secrets
import string
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import boto3
from moto.cloudformation.parsing import get_model_map

LOG = logging.getLogger(__name__)

BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION = "30"
BOOTSTRAP_VERSION_PARAMETER = f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"
# CDK writes every zip entry with this timestamp so asset hashes are reproducible.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class DeployError(RuntimeError):
    """The assembly cannot be deployed locally; the message says what and why."""


class Handling(StrEnum):
    STRIP = "stripped"
    EMULATE = "emulated"


@dataclass(frozen=True)
class TypeHandling:
    handling: Handling
    reason: str


HANDLED_TYPES: dict[str, TypeHandling] = {
    "AWS::CDK::Metadata": TypeHandling(Handling.STRIP, "CDK version analytics, no runtime effect"),
    "AWS::ApiGateway::Account": TypeHandling(
        Handling.STRIP,
        "account-wide CloudWatch role for API Gateway logging; the local API logs to the terminal",
    ),
    "AWS::ApiGateway::Stage": TypeHandling(
        Handling.EMULATE,
        "created with apigateway:CreateStage after the stack; the local API serves its name",
    ),
    "AWS::ApiGateway::RequestValidator": TypeHandling(
        Handling.STRIP, "the local API reads validators from the template itself"
    ),
    "AWS::ApiGateway::Model": TypeHandling(
        Handling.STRIP, "the local API reads models from the template itself"
    ),
    "AWS::ApiGatewayV2::Api": TypeHandling(
        Handling.STRIP, "HTTP APIs are not served by the local API (REST APIs only)"
    ),
    "AWS::ApiGatewayV2::Stage": TypeHandling(Handling.STRIP, "HTTP APIs are not served locally"),
    "AWS::ApiGatewayV2::Route": TypeHandling(Handling.STRIP, "HTTP APIs are not served locally"),
    "AWS::ApiGatewayV2::Integration": TypeHandling(
        Handling.STRIP, "HTTP APIs are not served locally"
    ),
    "AWS::CloudWatch::Alarm": TypeHandling(
        Handling.STRIP, "no metrics are recorded locally, so alarms could never fire"
    ),
    "AWS::WAFv2::WebACL": TypeHandling(
        Handling.STRIP, "no WAF locally: requests to the local API are not filtered"
    ),
    "AWS::WAFv2::WebACLAssociation": TypeHandling(Handling.STRIP, "no WAF locally"),
    "AWS::SNS::TopicPolicy": TypeHandling(
        Handling.STRIP, "moto does not enforce resource policies"
    ),
    "AWS::SQS::QueuePolicy": TypeHandling(
        Handling.STRIP, "moto does not enforce resource policies"
    ),
    "AWS::Events::EventBusPolicy": TypeHandling(
        Handling.STRIP, "moto does not enforce resource policies"
    ),
    "AWS::SecretsManager::Secret": TypeHandling(
        Handling.EMULATE,
        "created with secretsmanager:CreateSecret before the stack, so its ARN is a real one",
    ),
}


def _kms_tags_for_moto(properties: dict[str, Any]) -> None:
    # moto's AWS::KMS::Key reads Tags in the KMS API's shape (TagKey/TagValue), not the
    # CloudFormation shape (Key/Value), and fails with KeyError: 'TagKey' otherwise.
    if "Tags" in properties:
        properties["Tags"] = [
            {"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in properties["Tags"]
        ]


def _method_integration_for_moto(properties: dict[str, Any]) -> None:
    # moto's AWS::ApiGateway::Method requires Integration.IntegrationHttpMethod and .Uri, which
    # CloudFormation leaves optional (CDK omits both for MOCK integrations, e.g. CORS preflight).
    # The local API reads integrations from the synthesized template, not from moto.
    integration = properties.setdefault("Integration", {"Type": "MOCK"})
    if isinstance(integration, dict):
        integration.setdefault("IntegrationHttpMethod", properties.get("HttpMethod", "ANY"))
        integration.setdefault("Uri", "")


# Supported types whose properties moto reads differently from CloudFormation.
PROPERTY_FIXES: dict[str, Callable[[dict[str, Any]], None]] = {
    "AWS::KMS::Key": _kms_tags_for_moto,
    "AWS::ApiGateway::Method": _method_integration_for_moto,
}


def _event_bus_ref(logical_id: str, properties: dict[str, Any]) -> str:
    name = properties.get("Name")
    if not isinstance(name, str):
        raise DeployError(f"{logical_id}: AWS::Events::EventBus needs a literal Name locally")
    return name


# Supported types whose Ref moto's CloudFormation resolves wrongly (to a Python repr): the
# references are replaced with the value CloudFormation would give, the resource stays.
REF_FIXES: dict[str, Callable[[str, dict[str, Any]], str]] = {
    "AWS::Events::EventBus": _event_bus_ref,
}

# Fn::GetAtt on a stripped resource needs some value; these keep the ARN shape recognisable.
_SERVICE_OF_TYPE = re.compile(r"^AWS::(?P<service>[A-Za-z0-9]+)::")


@dataclass(frozen=True)
class HandledResource:
    stack: str
    logical_id: str
    resource_type: str
    handling: Handling
    reason: str

    def describe(self) -> str:
        return (
            f"{self.stack}/{self.logical_id} ({self.resource_type}) {self.handling}: {self.reason}"
        )


@dataclass(frozen=True)
class StackArtifact:
    name: str
    template_file: Path
    asset_manifests: tuple[Path, ...]
    dependencies: tuple[str, ...]

    def template(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.template_file.read_text())
        return loaded


@dataclass
class DeployedStack:
    name: str
    stack_id: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    template: dict[str, Any]
    # Logical ids of every resource moto's CloudFormation created (some without a physical id).
    created: set[str] = field(default_factory=set)


@dataclass
class Deployment:
    account_id: str
    region: str
    stacks: dict[str, DeployedStack] = field(default_factory=dict)
    handled: list[HandledResource] = field(default_factory=list)

    def output(self, key: str) -> str:
        """One stack output by key, searched across stacks; fails if missing or ambiguous."""
        found = [s.outputs[key] for s in self.stacks.values() if key in s.outputs]
        if len(found) != 1:
            where = {name: sorted(s.outputs) for name, s in self.stacks.items()}
            raise KeyError(f"output {key!r} found {len(found)} times; outputs: {where}")
        return found[0]

    def all_outputs(self) -> dict[str, dict[str, str]]:
        return {name: dict(stack.outputs) for name, stack in self.stacks.items()}


ClientFactory = Callable[[str], Any]


def client_factory(region: str, endpoint_url: str | None = None) -> ClientFactory:
    """boto3 clients for the local cloud: intercepted by mock_aws, or sent to the moto server."""

    def make(service: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=endpoint_url)  # type: ignore[call-overload]

    return make


# --- the cloud assembly ------------------------------------------------------------------------


def read_assembly(cdk_out: Path) -> list[StackArtifact]:
    """The stacks of a cloud assembly, dependencies first."""
    manifest_file = cdk_out / "manifest.json"
    if not manifest_file.is_file():
        raise DeployError(
            f"{cdk_out} is not a synthesized cloud assembly (no manifest.json): run `make synth`"
        )
    artifacts: dict[str, Any] = json.loads(manifest_file.read_text())["artifacts"]
    stacks: dict[str, StackArtifact] = {}
    for name, artifact in artifacts.items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        dependencies = tuple(artifact.get("dependencies", []))
        stacks[name] = StackArtifact(
            name=artifact.get("properties", {}).get("stackName", name),
            template_file=cdk_out / artifact["properties"]["templateFile"],
            asset_manifests=tuple(
                cdk_out / artifacts[d]["properties"]["file"]
                for d in dependencies
                if artifacts.get(d, {}).get("type") == "cdk:asset-manifest"
            ),
            dependencies=tuple(
                d for d in dependencies if artifacts.get(d, {}).get("type") == artifact["type"]
            ),
        )
    return _dependency_order(stacks)


def _dependency_order(stacks: dict[str, StackArtifact]) -> list[StackArtifact]:
    ordered: list[StackArtifact] = []
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(artifact_id: str) -> None:
        if artifact_id in done:
            return
        if artifact_id in visiting:
            raise DeployError(f"stack dependency cycle through {artifact_id}")
        visiting.add(artifact_id)
        for dependency in stacks[artifact_id].dependencies:
            visit(dependency)
        visiting.discard(artifact_id)
        done.add(artifact_id)
        ordered.append(stacks[artifact_id])

    for artifact_id in sorted(stacks):
        visit(artifact_id)
    return ordered


# --- bootstrap and assets ----------------------------------------------------------------------


def bootstrap_bucket(account_id: str, region: str) -> str:
    return f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{account_id}-{region}"


def bootstrap(clients: ClientFactory, account_id: str, region: str) -> None:
    """What `cdk bootstrap` leaves behind that a deploy reads: the assets bucket and the version."""
    s3 = clients("s3")
    bucket = bootstrap_bucket(account_id, region)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
    clients("ssm").put_parameter(
        Name=BOOTSTRAP_VERSION_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )


def zip_directory(directory: Path) -> bytes:
    """Zip a directory as CDK does: sorted entries, fixed timestamps, file modes kept."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), _ZIP_EPOCH)
            info.external_attr = (path.stat().st_mode & 0o777 | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _substitute_placeholders(text: str, account_id: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", account_id)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def publish_assets(
    clients: ClientFactory, manifest_file: Path, account_id: str, region: str
) -> int:
    """Upload every file asset of one `<Stack>.assets.json`; returns how many were uploaded."""
    manifest = json.loads(manifest_file.read_text())
    if manifest.get("dockerImages"):
        raise DeployError(
            f"{manifest_file.name} has Docker image assets; the local cloud runs without Docker"
        )
    s3 = clients("s3")
    uploaded = 0
    for asset_id, asset in manifest.get("files", {}).items():
        source = manifest_file.parent / asset["source"]["path"]
        packaging = asset["source"].get("packaging", "file")
        if not source.exists():
            raise DeployError(f"asset {asset_id} source {source} is missing: run `make synth`")
        if packaging == "zip" and source.is_dir():
            body = zip_directory(source)
        elif packaging in ("zip", "file") and source.is_file():
            body = source.read_bytes()
        else:
            raise DeployError(f"asset {asset_id}: unsupported packaging {packaging!r} for {source}")
        for destination in asset["destinations"].values():
            s3.put_object(
                Bucket=_substitute_placeholders(destination["bucketName"], account_id, region),
                Key=_substitute_placeholders(destination["objectKey"], account_id, region),
                Body=body,
            )
            uploaded += 1
    return uploaded


# --- template preparation ----------------------------------------------------------------------


@dataclass
class PreparedTemplate:
    body: dict[str, Any]
    handled: list[HandledResource]
    # Resources to create through the API after the stack exists: (logical id, original JSON).
    post_create: list[tuple[str, dict[str, Any]]]


def unsupported_types(template: dict[str, Any]) -> list[str]:
    """Types in the template that neither moto's CloudFormation nor this module can handle."""
    supported = get_model_map()
    return sorted(
        {
            resource["Type"]
            for resource in template.get("Resources", {}).values()
            if resource["Type"] not in supported
            and resource["Type"] not in HANDLED_TYPES
            and not resource["Type"].startswith("Custom::")
        }
        | {
            resource["Type"]
            for resource in template.get("Resources", {}).values()
            if resource["Type"].startswith(("Custom::", "AWS::CloudFormation::CustomResource"))
        }
    )


def _placeholder_values(
    logical_id: str, resource: dict[str, Any], account_id: str, region: str
) -> tuple[str, Callable[[str], str]]:
    """(Ref value, GetAtt function) for a resource that does not exist in moto."""
    resource_type = resource["Type"]
    properties = resource.get("Properties", {})
    if resource_type == "AWS::ApiGateway::Stage":
        ref = properties.get("StageName")
        if not isinstance(ref, str):
            raise DeployError(f"{logical_id}: StageName must be a literal to deploy locally")
    elif resource_type == "AWS::ApiGateway::Model" and isinstance(properties.get("Name"), str):
        ref = properties["Name"]
    else:
        ref = f"localcloud-{logical_id}"
    match = _SERVICE_OF_TYPE.match(resource_type)
    service = match.group("service").lower() if match else "unknown"

    def get_att(attribute: str) -> str:
        if attribute == "Arn" or attribute.endswith("Arn"):
            return f"arn:aws:{service}:{region}:{account_id}:localcloud/{logical_id}"
        return f"localcloud-{logical_id}-{attribute}"

    return ref, get_att


def _substitute_references(
    node: Any, refs: dict[str, str], get_atts: dict[str, Callable[[str], str]]
) -> Any:
    """Replace Ref / Fn::GetAtt / Fn::Sub references to resources that moto will not create."""
    if isinstance(node, list):
        return [_substitute_references(item, refs, get_atts) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref" and isinstance(value, str) and value in refs:
            return refs[value]
        if key == "Fn::GetAtt":
            target, attribute = value.split(".", 1) if isinstance(value, str) else value
            if target in get_atts:
                return get_atts[target](attribute)
        if key == "Fn::Sub":
            return {"Fn::Sub": _substitute_in_sub(value, refs, get_atts)}
    return {key: _substitute_references(value, refs, get_atts) for key, value in node.items()}


_SUB_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z0-9_]+)(?:\.(?P<attribute>[A-Za-z0-9_.]+))?\}")


def _substitute_in_sub(
    value: Any, refs: dict[str, str], get_atts: dict[str, Callable[[str], str]]
) -> Any:
    if isinstance(value, list):
        text, variables = value
        local = set(variables)
    else:
        text, variables, local = value, None, set()

    def replace(match: re.Match[str]) -> str:
        name, attribute = match.group("name"), match.group("attribute")
        if name in local:
            return match.group(0)
        if attribute is None and name in refs:
            return refs[name]
        if attribute is not None and name in get_atts:
            return get_atts[name](attribute)
        return match.group(0)

    replaced = _SUB_VARIABLE.sub(replace, text)
    if variables is None:
        return replaced
    return [replaced, _substitute_references(variables, refs, get_atts)]


def check_deployable(stack: str, template: dict[str, Any]) -> None:
    """Refuse a template with resource types nobody here can create, naming each of them."""
    missing = unsupported_types(template)
    if missing:
        raise DeployError(
            f"stack {stack} uses resource types the local cloud cannot deploy: "
            f"{', '.join(missing)}. Add a handling for each to HANDLED_TYPES in "
            "localcloud/deploy.py (strip with a reason, or emulate through the API), "
            "or change the stack"
        )


def prepare_template(
    stack: str,
    template: dict[str, Any],
    account_id: str,
    region: str,
    emulated_refs: dict[str, str] | None = None,
) -> PreparedTemplate:
    """A template moto's CloudFormation accepts: handled types removed, references resolved.

    `emulated_refs` maps logical ids of resources already created through the API (secrets) to
    their Ref value (the ARN).
    """
    check_deployable(stack, template)
    body = copy.deepcopy(template)
    resources: dict[str, Any] = body.get("Resources", {})
    refs: dict[str, str] = dict(emulated_refs or {})
    get_atts: dict[str, Callable[[str], str]] = {}
    handled: list[HandledResource] = []
    post_create: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in list(resources.items()):
        fix = PROPERTY_FIXES.get(resource["Type"])
        if fix is not None:
            fix(resource.setdefault("Properties", {}))
        handling = HANDLED_TYPES.get(resource["Type"])
        if handling is None:
            continue
        handled.append(
            HandledResource(stack, logical_id, resource["Type"], handling.handling, handling.reason)
        )
        if logical_id in refs:
            arn = refs[logical_id]
            get_atts[logical_id] = lambda _attribute, arn=arn: arn  # type: ignore[misc]
        else:
            refs[logical_id], get_atts[logical_id] = _placeholder_values(
                logical_id, resource, account_id, region
            )
        if resource["Type"] == "AWS::ApiGateway::Stage":
            post_create.append((logical_id, resource))
        del resources[logical_id]
    removed = {item.logical_id for item in handled}
    for logical_id, resource in resources.items():
        ref_fix = REF_FIXES.get(resource["Type"])
        if ref_fix is not None:
            refs[logical_id] = ref_fix(logical_id, resource.get("Properties", {}))
    for resource in resources.values():
        depends_on = resource.get("DependsOn")
        if isinstance(depends_on, str):
            depends_on = [depends_on]
        if depends_on is not None:
            kept = [d for d in depends_on if d not in removed]
            if kept:
                resource["DependsOn"] = kept
            else:
                del resource["DependsOn"]
    body = _substitute_references(body, refs, get_atts)
    return PreparedTemplate(body=body, handled=handled, post_create=post_create)


# --- emulated resources ------------------------------------------------------------------------


def _literal(value: Any, where: str) -> Any:
    """`value` unchanged if it holds no intrinsic function (only CloudFormation resolves those)."""
    if isinstance(value, dict):
        if any(key == "Ref" or key.startswith("Fn::") for key in value):
            raise DeployError(f"{where} must be a literal to be emulated locally, got {value}")
        return {key: _literal(item, where) for key, item in value.items()}
    if isinstance(value, list):
        return [_literal(item, where) for item in value]
    return value


def _generated_secret_string(secretsmanager: Any, options: dict[str, Any], where: str) -> str:
    options = _literal(options, where)
    password_options = {
        key: options[key]
        for key in (
            "PasswordLength",
            "ExcludeCharacters",
            "ExcludeNumbers",
            "ExcludePunctuation",
            "ExcludeUppercase",
            "ExcludeLowercase",
            "IncludeSpace",
            "RequireEachIncludedType",
        )
        if key in options
    }
    password: str = secretsmanager.get_random_password(**password_options)["RandomPassword"]
    template = options.get("SecretStringTemplate")
    key = options.get("GenerateStringKey")
    if template is None and key is None:
        return password
    if template is None or key is None:
        raise DeployError(f"{where}: SecretStringTemplate and GenerateStringKey go together")
    document = json.loads(template)
    document[key] = password
    return json.dumps(document)


def create_secrets(clients: ClientFactory, stack: str, template: dict[str, Any]) -> dict[str, str]:
    """Create the stack's secrets through the API; returns logical id -> ARN (their Ref value)."""
    secretsmanager = clients("secretsmanager")
    arns: dict[str, str] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource["Type"] != "AWS::SecretsManager::Secret":
            continue
        where = f"{stack}/{logical_id}"
        properties = resource.get("Properties", {})
        ignored = sorted(
            set(properties)
            - {"Name", "Description", "SecretString", "GenerateSecretString", "Tags"}
        )
        if ignored:
            LOG.info("%s: not applied locally: %s", where, ", ".join(ignored))
        suffix = "".join(secrets.choice(string.ascii_letters) for _ in range(12))
        name = _literal(properties.get("Name", f"{logical_id}-{suffix}"), f"{where} Name")
        if "SecretString" in properties:
            value = _literal(properties["SecretString"], f"{where} SecretString")
        else:
            value = _generated_secret_string(
                secretsmanager, properties.get("GenerateSecretString", {}), where
            )
        request: dict[str, Any] = {"Name": name, "SecretString": value}
        if "Description" in properties:
            request["Description"] = _literal(properties["Description"], f"{where} Description")
        if "Tags" in properties:
            request["Tags"] = _literal(properties["Tags"], f"{where} Tags")
        arns[logical_id] = secretsmanager.create_secret(**request)["ARN"]
    return arns


def _physical_id(stack: DeployedStack, node: Any, where: str) -> str:
    if isinstance(node, dict) and set(node) == {"Ref"} and node["Ref"] in stack.physical_ids:
        return stack.physical_ids[node["Ref"]]
    raise DeployError(f"{where}: expected a Ref to a resource of the same stack, got {node}")


def _deployment_id(
    apigateway: Any, stack: DeployedStack, rest_api_id: str, properties: dict[str, Any], where: str
) -> str:
    reference = properties.get("DeploymentId")
    if isinstance(reference, dict) and stack.physical_ids.get(reference.get("Ref", "")):
        return stack.physical_ids[reference["Ref"]]
    # moto's CloudFormation records no physical id for AWS::ApiGateway::Deployment; CDK makes
    # one deployment per RestApi, so the API's only deployment is the one referenced.
    deployments = apigateway.get_deployments(restApiId=rest_api_id)["items"]
    if len(deployments) != 1:
        raise DeployError(f"{where}: cannot tell which of {len(deployments)} deployments it uses")
    deployment_id: str = deployments[0]["id"]
    return deployment_id


def create_stages(
    clients: ClientFactory, stack: DeployedStack, stages: Iterable[tuple[str, dict[str, Any]]]
) -> None:
    apigateway = clients("apigateway")
    for logical_id, resource in stages:
        where = f"{stack.name}/{logical_id}"
        properties = resource["Properties"]
        rest_api_id = _physical_id(stack, properties["RestApiId"], f"{where} RestApiId")
        request: dict[str, Any] = {
            "restApiId": rest_api_id,
            "stageName": _literal(properties["StageName"], f"{where} StageName"),
            "deploymentId": _deployment_id(apigateway, stack, rest_api_id, properties, where),
        }
        if "Variables" in properties:
            request["variables"] = _literal(properties["Variables"], f"{where} Variables")
        apigateway.create_stage(**request)


def _layer_version_arn(lambda_client: Any, stack: DeployedStack, layer: Any, where: str) -> str:
    if isinstance(layer, str):
        return layer
    if not (isinstance(layer, dict) and set(layer) == {"Ref"}):
        raise DeployError(f"{where}: expected a layer ARN or a Ref to a LayerVersion, got {layer}")
    logical_id = layer["Ref"]
    if stack.physical_ids.get(logical_id):
        return stack.physical_ids[logical_id]
    # moto's CloudFormation records no physical id for AWS::Lambda::LayerVersion; it names the
    # layer LayerName or "<stack>-<logical id>-<suffix>", so find it by that name.
    properties = stack.template["Resources"][logical_id].get("Properties", {})
    name = properties.get("LayerName")
    candidates = [
        found["LatestMatchingVersion"]["LayerVersionArn"]
        for found in lambda_client.list_layers()["Layers"]
        if found["LayerName"] == name
        or found["LayerName"].startswith(f"{stack.name}-{logical_id}-")
    ]
    if len(candidates) != 1:
        raise DeployError(f"{where}: found {len(candidates)} layers for {logical_id}")
    arn: str = candidates[0]
    return arn


def attach_layers(clients: ClientFactory, stack: DeployedStack) -> int:
    """Give each function its layers (moto's CloudFormation ignores a function's `Layers`).

    Returns how many functions were updated.
    """
    lambda_client = clients("lambda")
    updated = 0
    for logical_id, resource in stack.template.get("Resources", {}).items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        layers = resource.get("Properties", {}).get("Layers")
        if not layers:
            continue
        where = f"{stack.name}/{logical_id} Layers"
        arns = [_layer_version_arn(lambda_client, stack, layer, where) for layer in layers]
        lambda_client.update_function_configuration(
            FunctionName=stack.physical_ids[logical_id], Layers=arns
        )
        updated += 1
    return updated


# --- the deploy --------------------------------------------------------------------------------


def _describe(cloudformation: Any, stack_name: str) -> DeployedStack:
    description = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if description["StackStatus"] != "CREATE_COMPLETE":
        events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
        failures = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
            for e in events
            if e["ResourceStatus"].endswith("FAILED")
        ]
        raise DeployError(
            f"stack {stack_name} is {description['StackStatus']}: "
            f"{description.get('StackStatusReason', '')} {failures}"
        )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    broken = {key: value for key, value in outputs.items() if "<moto." in value}
    if broken:
        raise DeployError(
            f"stack {stack_name}: moto resolved these outputs to Python objects: {broken}; "
            "add the resource type to REF_FIXES in localcloud/deploy.py"
        )
    resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    return DeployedStack(
        name=stack_name,
        stack_id=description["StackId"],
        outputs=outputs,
        physical_ids={
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in resources
            if r.get("PhysicalResourceId")
        },
        template={},
        created={r["LogicalResourceId"] for r in resources},
    )


def deploy_assembly(
    cdk_out: Path, clients: ClientFactory, *, only_stacks: Iterable[str] | None = None
) -> Deployment:
    """Deploy every stack of the assembly (or `only_stacks` and what they need) into moto."""
    cdk_out = Path(cdk_out)
    identity = clients("sts").get_caller_identity()
    account_id = identity["Account"]
    region = clients("sts").meta.region_name
    artifacts = read_assembly(cdk_out)
    if only_stacks is not None:
        wanted = set(only_stacks)
        unknown = wanted - {a.name for a in artifacts}
        if unknown:
            raise DeployError(f"no such stacks in {cdk_out}: {sorted(unknown)}")
        artifacts = [a for a in artifacts if a.name in wanted]
    # Reject an undeployable assembly before creating anything.
    for artifact in artifacts:
        check_deployable(artifact.name, artifact.template())
    bootstrap(clients, account_id, region)
    cloudformation = clients("cloudformation")
    deployment = Deployment(account_id=account_id, region=region)
    published: set[Path] = set()
    for artifact in artifacts:
        for manifest in artifact.asset_manifests:
            if manifest not in published:
                publish_assets(clients, manifest, account_id, region)
                published.add(manifest)
        template = artifact.template()
        secret_arns = create_secrets(clients, artifact.name, template)
        prepared = prepare_template(artifact.name, template, account_id, region, secret_arns)
        for item in prepared.handled:
            LOG.info("%s", item.describe())
        cloudformation.create_stack(
            StackName=artifact.name,
            TemplateBody=json.dumps(prepared.body),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        deployed = _describe(cloudformation, artifact.name)
        deployed.physical_ids.update(secret_arns)
        deployed.template = template
        create_stages(clients, deployed, prepared.post_create)
        attach_layers(clients, deployed)
        for logical_id, resource in prepared.post_create:
            deployed.physical_ids[logical_id] = resource["Properties"]["StageName"]
        deployment.stacks[artifact.name] = deployed
        deployment.handled.extend(prepared.handled)
    return deployment


def default_cdk_out() -> Path:
    return Path(os.environ.get("CDK_OUTDIR", "cdk.out"))
