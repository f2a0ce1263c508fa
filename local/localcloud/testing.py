"""The local cloud for tests: in-process moto, a cloud assembly deployed, the local API listening.

    with local_cloud(Path("cdk.out")) as cloud:
        httpx.post(f"{cloud.api_url}/companies", json=...)
        execution = cloud.run_state_machine(cloud.output("OnboardingStateMachineArn"), {...})

tests/localcloud/conftest.py wraps this in pytest fixtures; other tiers import it the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from localcloud import moto_runtime
from localcloud.deploy import ClientFactory, Deployment, client_factory, deploy_assembly
from localcloud.gateway import GatewayServer, LocalApi, rest_api_ids

# Waits and retry back-offs run 1000 times faster: a 60 s Wait takes 60 ms.
DEFAULT_TEST_TIME_SCALE = 0.001
_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class CloudAssemblyMissing(RuntimeError):
    pass


def require_cdk_out(cdk_out: Path) -> Path:
    """`cdk_out` if it holds a synthesized assembly, else an error that says to run `make synth`."""
    if not (cdk_out / "manifest.json").is_file():
        raise CloudAssemblyMissing(
            f"no cloud assembly at {cdk_out.resolve()}: run `make synth` first "
            "(the local-cloud tests deploy the synthesized templates, they do not synthesize)"
        )
    return cdk_out


@dataclass
class LocalCloud:
    deployment: Deployment
    clients: ClientFactory
    # The default REST API (named by `rest_api=`, else the first in the deployment).
    api_url: str
    local_api: LocalApi
    # Every REST API served, each on its own port as each has its own host name on AWS; keyed by
    # the API's id (the host name's first label), logical id and name.
    api_urls: dict[str, str] = field(default_factory=dict)

    def local_url(self, aws_url: str) -> str:
        """The local address of a deployed API URL (e.g. a stack output
        `https://<api-id>.execute-api.<region>.amazonaws.com/<stage>/path`)."""
        parts = urlsplit(aws_url)
        api_id = (parts.hostname or "").split(".", 1)[0]
        if api_id not in self.api_urls:
            raise KeyError(
                f"{aws_url} is not the URL of a served REST API ({sorted(self.api_urls)})"
            )
        return self.api_urls[api_id] + parts.path

    @property
    def region(self) -> str:
        return self.deployment.region

    @property
    def account_id(self) -> str:
        return self.deployment.account_id

    def client(self, service: str) -> Any:
        return self.clients(service)

    def output(self, key: str) -> str:
        return self.deployment.output(key)

    def wait_for_queues(self, timeout: float = 30.0) -> None:
        """Until every queue a function is mapped to is empty (delivered, or dead-lettered)."""
        lambda_client, sqs = self.client("lambda"), self.client("sqs")
        arns = [
            m["EventSourceArn"]
            for m in lambda_client.list_event_source_mappings()["EventSourceMappings"]
            if m["EventSourceArn"].startswith("arn:aws:sqs:")
        ]
        urls = [sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"] for arn in arns]
        deadline = time.monotonic() + timeout
        quiet = 0  # seen empty twice in a row: a message moving to a DLQ is in neither for a moment
        while True:
            counts = [
                sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )["Attributes"]
                for url in urls
            ]
            quiet = quiet + 1 if all(int(v) == 0 for c in counts for v in c.values()) else 0
            if quiet >= 2:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"queues still hold messages after {timeout}s: {counts}")
            time.sleep(0.02)

    def start_execution(self, state_machine_arn: str, payload: Any) -> str:
        started = self.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, input=json.dumps(payload)
        )
        arn: str = started["executionArn"]
        return arn

    def wait_for_execution(self, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
        """describe_execution once the execution has stopped; TimeoutError if it has not in time."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            description: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if description["status"] in _TERMINAL:
                return description
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{execution_arn} still {description['status']} after {timeout}s"
                )
            time.sleep(0.01)

    def run_state_machine(
        self, state_machine_arn: str, payload: Any, timeout: float = 30.0
    ) -> dict[str, Any]:
        return self.wait_for_execution(self.start_execution(state_machine_arn, payload), timeout)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]


@contextlib.contextmanager
def local_cloud(
    cdk_out: Path,
    *,
    time_scale: float = DEFAULT_TEST_TIME_SCALE,
    region: str = moto_runtime.DEFAULT_REGION,
    rest_api: str | None = None,
    serve_api: bool = True,
) -> Iterator[LocalCloud]:
    """Deploy `cdk_out` into a fresh in-process moto and serve each REST API on a free port."""
    require_cdk_out(cdk_out)
    with moto_runtime.in_process_moto(region):
        previous_scale = moto_runtime.time_scale()
        moto_runtime.set_time_scale(time_scale)
        try:
            clients = client_factory(region)
            deployment = deploy_assembly(cdk_out, clients)
            local_api = LocalApi(deployment, clients, rest_api=rest_api or _first(deployment))
            if not serve_api:
                yield LocalCloud(deployment, clients, "", local_api)
                return
            with contextlib.ExitStack() as servers:
                urls: dict[str, str] = {}
                default_url = ""
                for logical_id in rest_api_ids(deployment):
                    api = (
                        local_api
                        if logical_id == local_api.api.info.logical_id
                        else LocalApi(deployment, clients, rest_api=logical_id)
                    )
                    server = servers.enter_context(GatewayServer(api, port=0))
                    for key in (api.api.api_id, logical_id, api.api.info.name):
                        urls[key] = server.url
                    if api is local_api:
                        default_url = server.url
                yield LocalCloud(deployment, clients, default_url, local_api, urls)
        finally:
            moto_runtime.set_time_scale(previous_scale)


def _first(deployment: Deployment) -> str | None:
    ids = rest_api_ids(deployment)
    return ids[0] if ids else None


def _tree_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(directory).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def synthesize_app(app_py: Path, cache_root: Path) -> Path:
    """Synthesize a CDK app (`python APP OUTDIR`) once per content of its folder; returns OUTDIR.

    For small test apps such as the local cloud's fixture: the product's own cdk.out comes from
    `make synth`.
    """
    target = cache_root / f"{app_py.parent.name}-{_tree_digest(app_py.parent)}"
    if (target / "manifest.json").is_file():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_root, prefix=".synth-"))
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    completed = subprocess.run(  # noqa: S603 - our interpreter running a CDK app from the repo
        [sys.executable, str(app_py), str(staging)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if completed.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"synthesizing {app_py} failed:\n{completed.stderr[-4000:]}")
    try:
        staging.rename(target)
    except OSError:
        # Another worker finished the same synthesis first; theirs is identical.
        shutil.rmtree(staging, ignore_errors=True)
    return target
