"""The path a deploying engineer takes: the pinned CDK CLI (`npx cdk`, through cdk.json) with
credentials configured, synthesizing prod for a concrete account and region into a folder of its
own choosing (`--output`), as `cdk deploy` synthesizes before it deploys.

Offline, with nothing of the engineer's machine: dummy credentials (generated here), no AWS
config files, every AWS endpoint on a closed local port (the CLI asks STS for the account; refused
at once, it keeps CDK_DEFAULT_ACCOUNT from the environment, as it does whenever STS cannot answer;
the region comes from AWS_REGION, as from a profile), no instance metadata, no notices, no
telemetry, and npx may not download anything.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.app import ROOT
from tests.infra.cfn_lint import findings
from tests.infra.conftest import ACCOUNT, REGION

STAGE = "prod"


@dataclass(frozen=True)
class CliRun:
    outdir: Path
    returncode: int
    stdout: str
    stderr: str


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dummy_credentials() -> dict[str, str]:
    alphabet = string.ascii_uppercase + string.digits
    return {
        "AWS_ACCESS_KEY_ID": "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
    }


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    if not (ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail(
            "the pinned CDK CLI is missing: run `make node_modules/.installed` (make test does)"
        )
    work = tmp_path_factory.mktemp("cdk-cli")
    outdir = work / "assembly"
    # Nothing of make's environment either: the Makefile exports the Node notices' silencers.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_", "JSII_SILENCE_"))
    }
    env.update(
        _dummy_credentials(),
        AWS_CONFIG_FILE=str(work / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"),
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{_closed_port()}",
        AWS_EC2_METADATA_DISABLED="true",
        CDK_DEFAULT_ACCOUNT=ACCOUNT,
        CDK_DISABLE_CLI_TELEMETRY="true",
        npm_config_update_notifier="false",
        # This machine's Node is 20. jsii's notice about it is the app's to silence (app.py), so
        # it is not set here. The CLI's own AWS SDK prints one too once it has credentials, before
        # the app runs; only the engineer's environment can silence that (the Makefile does, the
        # README says how), and on Node 22+ it does not print.
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="true",
    )
    command = ["npx", "--no", "--", "cdk", "synth", "--no-notices", "-c", f"stage={STAGE}"]
    result = subprocess.run(
        [*command, "--output", str(outdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return CliRun(outdir, result.returncode, result.stdout, result.stderr)


def test_the_cli_synthesizes_into_the_folder_it_was_given(cli_run):
    assert cli_run.returncode == 0, cli_run.stderr
    # The CLI writes this line to stderr, or to stdout where CI=true (as on CI machines).
    assert f"Successfully synthesized to {cli_run.outdir}" in cli_run.stdout + cli_run.stderr
    manifest = json.loads((cli_run.outdir / "manifest.json").read_text())
    stacks = {
        name: artifact
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert set(stacks) == {f"BillPay-{STAGE}-State", f"BillPay-{STAGE}-Service"}
    for artifact in stacks.values():
        assert artifact["environment"] == f"aws://{ACCOUNT}/{REGION}"


def test_the_cli_synth_is_for_the_account_and_passes_cdk_nag(cli_run):
    assert cli_run.returncode == 0, cli_run.stderr
    service = (cli_run.outdir / f"BillPay-{STAGE}-Service.template.json").read_text()
    # the ARN whose tokenized acknowledgment used to fail every deploy
    assert f"arn:aws:states:{REGION}:{ACCOUNT}:execution:BillPay-{STAGE}-onboarding:*" in service


# Everything `cdk synth --output DIR` may print: any other line (a CDK or cdk-nag warning, the
# feature-flag notice, jsii's Node banner, which never says "warn") fails the test.
EXPECTED_OUTPUT = (
    re.compile(r"Bundling asset \S+\.\.\."),
    re.compile(r"Successfully synthesized to \S+"),
    re.compile(r"Supply a stack id \(.+\) to display its template\."),
)


def test_the_cli_prints_no_warning(cli_run):
    assert cli_run.returncode == 0, cli_run.stderr
    output = cli_run.stdout + cli_run.stderr
    unexpected = [
        line
        for line in output.splitlines()
        if line.strip() and not any(p.fullmatch(line.strip()) for p in EXPECTED_OUTPUT)
    ]
    assert unexpected == []


def test_the_cli_templates_have_no_cfn_lint_error_or_warning(cli_run):
    assert cli_run.returncode == 0, cli_run.stderr
    for path in sorted(cli_run.outdir.glob("*.template.json")):
        assert findings(json.loads(path.read_text()), REGION) == [], path.name
