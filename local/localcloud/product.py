"""The product on the local cloud, talking to the Codat emulator instead of Codat.

    with running_product(Path("cdk.out")) as product:
        product.cloud.api_url       # the local product API
        product.emulator.sdk()      # the emulator, as Codat
        product.lambda_env          # what every deployed function was given on top of its template
        product.webhook_url         # the local webhook endpoint the emulator posts to

The synthesized stack runs unchanged except for what only exists at run time on this machine, set
after the deploy as an operator would set it in AWS:
- the Codat API key secret holds the emulator's key (in AWS, the operator's Codat key);
- every function's CODAT_BASE_URL points at the emulator (in AWS, the stage's `codat_base_url`);
- the emulator is set up by the same code an operator runs against Codat (`ops.codat_setup`): a
  webhook consumer for the local webhook endpoint, and the data type sync settings (what the
  first read after Link fetches); the webhook signing secret in Secrets Manager is that
  consumer's (in AWS, copied from Codat's portal). So the emulator's signed webhooks reach the
  real ingress function through the local API Gateway.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codat_emulator.testing import RunningEmulator, running_emulator
from localcloud.testing import DEFAULT_TEST_TIME_SCALE, LocalCloud, local_cloud
from ops.codat_setup import ensure_sync_settings, ensure_webhook_consumer

# Names the stacks use (infra/constants.py): the harness reads outputs, never guesses resources.
OUTPUT_CODAT_API_KEY_SECRET_ARN = "CodatApiKeySecretArn"  # noqa: S105 - an output id
ENV_CODAT_BASE_URL = "CODAT_BASE_URL"
OUTPUT_WEBHOOK_URL = "CodatWebhookUrl"
OUTPUT_WEBHOOK_SECRET_ARN = "CodatWebhookSecretArn"  # noqa: S105 - an output id


@dataclass
class ProductCloud:
    cloud: LocalCloud
    emulator: RunningEmulator
    lambda_env: dict[str, str] = field(default_factory=dict)
    webhook_url: str = ""

    def function_names(self) -> list[str]:
        return deployed_functions(self.cloud)


def deployed_functions(cloud: LocalCloud) -> list[str]:
    names: list[str] = []
    for stack in cloud.deployment.stacks.values():
        for logical_id, resource in stack.template.get("Resources", {}).items():
            if resource["Type"] == "AWS::Lambda::Function":
                names.append(stack.physical_ids[logical_id])
    return names


def set_function_environment(cloud: LocalCloud, values: dict[str, str]) -> None:
    """Add `values` to every deployed function's environment (kept: what the template set)."""
    lambda_client = cloud.client("lambda")
    for name in deployed_functions(cloud):
        current = lambda_client.get_function_configuration(FunctionName=name)
        variables = dict(current.get("Environment", {}).get("Variables", {}))
        variables.update(values)
        lambda_client.update_function_configuration(
            FunctionName=name, Environment={"Variables": variables}
        )


def connect_to_emulator(cloud: LocalCloud, emulator: RunningEmulator) -> dict[str, str]:
    """Point the deployed product at the emulator; returns the environment added to functions."""
    cloud.client("secretsmanager").put_secret_value(
        SecretId=cloud.output(OUTPUT_CODAT_API_KEY_SECRET_ARN), SecretString=emulator.api_key
    )
    env = {ENV_CODAT_BASE_URL: emulator.base_url}
    set_function_environment(cloud, env)
    return env


def connect_webhooks(cloud: LocalCloud, emulator: RunningEmulator) -> str:
    """Set the emulator up as `python -m ops codat-setup` sets Codat up, and store the consumer's
    signing secret where the ingress reads it; returns the webhook endpoint's local URL."""
    url = cloud.local_url(cloud.output(OUTPUT_WEBHOOK_URL))
    with emulator.http() as codat:
        consumer = ensure_webhook_consumer(codat, url).consumer
        ensure_sync_settings(codat)
    # Codat shows a consumer's secret in its portal only; the emulator's store holds it.
    (secret,) = [c.secret for c in emulator.store.webhook_consumers() if c.id == consumer["id"]]
    cloud.client("secretsmanager").put_secret_value(
        SecretId=cloud.output(OUTPUT_WEBHOOK_SECRET_ARN), SecretString=secret
    )
    return url


@contextlib.contextmanager
def running_product(
    cdk_out: Path,
    *,
    time_scale: float = DEFAULT_TEST_TIME_SCALE,
    emulator: dict[str, Any] | None = None,
) -> Iterator[ProductCloud]:
    """The local cloud with `cdk_out` deployed, and a fresh emulator it calls as Codat.

    `emulator` holds EmulatorConfig overrides (``{"webhooks": {...}, "link": {...}}``).
    """
    with (
        running_emulator(**(emulator or {})) as codat,
        local_cloud(cdk_out, time_scale=time_scale) as cloud,
    ):
        env = connect_to_emulator(cloud, codat)
        webhook_url = connect_webhooks(cloud, codat)
        yield ProductCloud(cloud, codat, env, webhook_url)
