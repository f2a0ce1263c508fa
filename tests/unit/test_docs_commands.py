"""Every shell command in README.md and docs/*.md is run here, or mapped to the test or make target
that runs it, so the docs cannot drift.

A command is a line of a ```bash, ```sh, ```shell or ```console block (in console blocks only the
lines after `$ `), a line of prose starting with `$ `, or an inline code span that starts with a
program the docs tell people to run (`make`, `npx`, `.venv/bin/python`, `python -m`, `aws`,
`curl`, ...). Each one must be:

- in RUN_HERE: cheap and offline, run by this test through bash, which must succeed; or
- in MAPPED: the test (`tests/<file>.py::<test>`) or make target that runs it, and why it is not
  run here (it needs AWS, a running server, or minutes). The named test must exist.

Whatever the category, what can be checked offline is checked for every command: a `make` target
and its variables exist in the Makefile; `python -m ops ...` parses with the real parser; an `aws`
command names an operation and parameters that botocore's model of that service has (and every
required one); a stack output named in a command (`<CodatApiKeySecretArn>`,
`OutputKey=='ApiUrl'`) is one the stacks have; a `-c config=...` override validates against the
stage model; a curl to the Codat emulator hits one of its routes. A new command in the docs that is
in neither list fails `test_every_command_is_run_or_mapped`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import botocore.session
import pytest

from infra import constants
from infra.config import load_stage

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
SHELL_FENCES = {"bash", "sh", "shell", "console", "shell-session"}
COMMAND_PROGRAMS = (
    "make ",
    "npx ",
    ".venv/bin/python ",
    "python -m ",
    "python3 -m ",
    "aws ",
    "curl ",
    "build/tools/bin/uv ",
)
_FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w-]*)")


@dataclass(frozen=True)
class Command:
    path: Path
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.text}"


def _strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (a # inside quotes, or inside a word, stays)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _complete(text: str) -> bool:
    """Whether the shell would take `text` as a whole command (no open quote)."""
    try:
        shlex.split(text)
    except ValueError:
        return False
    return True


def _normal(text: str) -> str:
    text = " ".join(text.split())
    return text.removesuffix(" &").strip()


def _inline_commands(path: Path, prose: list[tuple[int, str]]) -> list[Command]:
    """Code spans that start with a command's program, also those wrapped over two lines."""
    found = []
    paragraph: list[tuple[int, str]] = []
    for number, line in [*prose, (0, "")]:
        if line.strip() and (not paragraph or number == paragraph[-1][0] + 1):
            paragraph.append((number, line))
            continue
        text = "\n".join(part for _, part in paragraph)
        for match in re.finditer(r"`([^`]+)`", text):
            span = " ".join(match.group(1).split())
            if span.startswith(COMMAND_PROGRAMS):
                line_number = paragraph[0][0] + text.count("\n", 0, match.start())
                found.append(Command(path, line_number, _normal(span)))
        paragraph = [(number, line)] if line.strip() else []
    return found


def commands_in(path: Path) -> list[Command]:
    found: list[Command] = []
    prose: list[tuple[int, str]] = []
    fence: str | None = None
    language = ""
    pending, pending_line = "", 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence, language = opening.group(1), opening.group(2).lower()
            continue
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
                if pending:
                    raise AssertionError(f"{path}:{pending_line}: unfinished command {pending!r}")
                continue
            if language not in SHELL_FENCES:
                continue
            text = line.strip()
            if language in ("console", "shell-session") and not pending:
                if not text.startswith("$ "):
                    continue  # output
                text = text[2:]
            if not pending:
                pending_line = number
            text = _strip_comment(text)
            if text.endswith("\\"):
                pending += text[:-1] + " "
                continue
            pending += text
            if not _complete(pending):
                pending += " "
                continue
            if pending.strip():
                found.append(Command(path, pending_line, _normal(pending)))
            pending = ""
            continue
        if line.startswith("$ "):
            found.append(Command(path, number, _normal(_strip_comment(line[2:]))))
        prose.append((number, line))
    return found + _inline_commands(path, prose)


ALL_COMMANDS = [command for path in DOCS for command in commands_in(path)]

# -- run here: cheap, offline, no server ----------------------------------------------------------

RUN_HERE: dict[str, str] = {
    "make help": "lists the targets",
    "export CODAT_EMULATOR_API_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(24))')": "a random key in the environment (the venv's python)",
    'AUTH="Authorization: Basic $(printf %s "$CODAT_EMULATOR_API_KEY" | base64)"': "the emulator's Basic auth header",
    "E=http://127.0.0.1:4010": "a variable",
    "API=${API%/}": "strips the trailing slash of ApiUrl",
    "export AWS_PROFILE=billpay-dev": "a variable",
}

# -- mapped: run elsewhere, by the test or make target named ----------------------------------------

SETTLE = (
    "tests/localcloud/test_payments.py::"
    "test_an_operator_settles_payments_left_for_review_through_the_ops_command"
)
DEMO = "tests/e2e/test_demo.py::test_the_demo_journey_succeeds_end_to_end"
CLI_SYNTH = "tests/infra/test_cdk_cli.py::test_the_cli_synth_is_for_the_account_and_passes_cdk_nag"
CLI_NO_WARNING = "tests/infra/test_cdk_cli.py::test_the_cli_prints_no_warning"
RETAINED = "tests/infra/test_state_stack.py::test_dev_data_is_disposable_but_prod_data_is_retained"
DEV_SERVER = (
    "tests/e2e/test_make_dev.py::test_dev_runs_a_codat_emulator_the_product_calls_instead_of_codat"
)
DEV_BROWSER = (
    "tests/e2e/test_make_dev.py::"
    "test_authorize_in_a_browser_on_the_printed_link_page_makes_the_company_ready"
)
DEV_CTRL_C = "tests/localcloud/test_server_mode.py::test_dev_serves_until_ctrl_c_then_stops_cleanly"
EMULATOR_CLI = "tests/emulator/test_cli.py::test_configured_key_is_used_and_never_printed"
CODAT_SETUP = (
    "tests/emulator/test_codat_setup.py::test_the_webhook_consumer_is_created_once_for_the_url"
)
REPLAY = (
    "tests/unit/ops/test_webhook_ops.py::"
    "test_replay_sends_every_chosen_id_and_counts_the_applied_ones"
)
REDRIVE = "tests/unit/ops/test_webhook_ops.py::test_the_redrive_moves_every_dead_letter_back"
STAGE_CONFIG = "tests/unit/test_stage_config.py::test_overrides_from_json_context_are_validated"
ONBOARDING_LOCAL = "tests/localcloud/test_onboarding.py"
NEEDS_AWS = (
    "needs AWS credentials and a deployed stage; what can be checked offline is checked here"
)
SYNTH_SLOW = "a full synth (about a minute); `make test` synthesizes before pytest"

MAPPED: dict[str, tuple[str, str]] = {
    # The two commands, and the make targets `make test` itself runs.
    "make demo": (DEMO, "the journey, as `make demo` runs it (a minute)"),
    "python -m localcloud demo": (DEMO, "what `make demo` runs"),
    "make test": ("make test", "CI runs it; this test is part of it"),
    "make lint": ("make test", "a prerequisite of `make test`"),
    "make typecheck": ("make test", "a prerequisite of `make test`"),
    "make synth": ("make test", "a prerequisite of `make test`: " + SYNTH_SLOW),
    "make synth STAGE=dev": ("make test", "a prerequisite of `make test`: " + SYNTH_SLOW),
    "make browser-deps": ("make test", "a prerequisite of `make test`"),
    "make test-lambda-python": ("make test", "run by `make test` after pytest"),
    "make test-unit": ("make test", "one tier of what `make test` runs"),
    "make test-localcloud": ("make test", "one tier of what `make test` runs"),
    "make test-e2e": ("make test", "one tier of what `make test` runs"),
    "make format": ("make lint", "rewrites files; `make lint` checks the same rules"),
    ".venv/bin/python -m pytest tests/localcloud/test_payments.py -q": (
        "tests/localcloud/test_payments.py",
        "part of `make test`",
    ),
    ".venv/bin/python -m pytest --durations=30": ("make test", "the same pytest run, timed"),
    "build/tools/bin/uv python install 3.13": (
        "tests/infra/test_bytecode.py",
        "downloads a Python (network); the bytecode tests fail saying to run it when 3.13 is missing",
    ),
    # The local cloud and the emulator: long-running servers.
    "make dev": (DEV_SERVER, "a server until Ctrl-C; the test runs it and onboards through it"),
    "python -m localcloud dev": (DEV_CTRL_C, "what `make dev` runs"),
    '.venv/bin/python -m localcloud dev --onboard "Acme Ltd" --time-scale 0.01': (
        DEV_BROWSER,
        "a server until Ctrl-C; the test runs it with --onboard, authorizes the printed Link page "
        "in headless Chromium and sees READY",
    ),
    "python -m localcloud.lambda_bootstrap": (
        "tests/localcloud/test_server_mode.py::"
        "test_subprocess_runner_on_a_moto_server_runs_the_state_machine",
        "what the subprocess runner starts for each invocation, described in docs/local-cloud.md",
    ),
    "curl -s -X POST http://127.0.0.1:3000/companies -H 'content-type: application/json' "
    '-d \'{"companyId": "smb-1", "name": "Acme Ltd", "platformKey": "gbol"}\'': (
        DEV_SERVER,
        "needs `make dev`; the test posts the same body to the local API and gets 202",
    ),
    "curl -s http://127.0.0.1:3000/companies/smb-1": (
        DEV_SERVER,
        "needs `make dev`; the test reads the company until PENDING_LINK with the emulator's Link",
    ),
    "make emulator": (EMULATOR_CLI, "a server until Ctrl-C; the test runs the same command"),
    "CODAT_EMULATOR_API_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(24))') "
    "codat-emulator": (EMULATOR_CLI, "a server until Ctrl-C; the test runs it with a key it made"),
    "curl -s -H \"$AUTH\" -H 'content-type: application/json' $E/webhooks -d "
    '\'{"url":"http://127.0.0.1:8000/codat/webhooks","eventTypes":["connection.connected",'
    '"read.completed.initial","read.completed","bills.write.successful",'
    '"bills.write.unsuccessful","client.rateLimit.reached","client.rateLimit.reset"]}\'': (
        "tests/emulator/test_webhooks_delivery.py",
        "needs `make emulator`; the route is checked here",
    ),
    "CO=$(curl -s -H \"$AUTH\" -H 'content-type: application/json' $E/companies -d "
    '\'{"name":"Toft Stores"}\' | python -c \'import json, sys; '
    'print(json.load(sys.stdin)["id"])\')': (
        "tests/emulator/test_contract_companies.py",
        "needs `make emulator`; the route is checked here",
    ),
    "CONN=$(curl -s -H \"$AUTH\" -H 'content-type: application/json' $E/companies/$CO/connections "
    '-d \'{"platformKey":"gbol"}\' | python -c \'import json, sys; '
    'print(json.load(sys.stdin)["id"])\')': (
        "tests/emulator/test_contract_companies.py",
        "needs `make emulator`; the route is checked here",
    ),
    "curl -s -H \"$AUTH\" -H 'content-type: application/json' "
    '$E/_emulator/link/$CO/connections/$CONN -d \'{"action":"authorize","size":500}\'': (
        "tests/emulator/test_link_pages.py",
        "needs `make emulator`; the route is checked here",
    ),
    'curl -s -H "$AUTH" "$E/companies/$CO/connections/$CONN/payables/bills"': (
        "tests/emulator/test_contract_payables.py",
        "needs `make emulator`; the route is checked here",
    ),
    'curl -s -H "$AUTH" $E/_emulator/webhooks/deliveries': (
        "tests/emulator/test_control_routes.py",
        "needs `make emulator`; the route is checked here",
    ),
    # Benchmarks: minutes each, run by `make bench`.
    "make bench": ("make bench", "minutes; the figures in docs/benchmarks.md come from it"),
    ".venv/bin/python -m benchmarks.packaging": ("make bench", "a part of `make bench`"),
    ".venv/bin/python -m benchmarks.packaging --repeats 7": (
        "make bench",
        "a part of `make bench`",
    ),
    ".venv/bin/python -m benchmarks.webhook_ingress": ("make bench", "a part of `make bench`"),
    ".venv/bin/python -m benchmarks.onboarding_cost": ("make bench", "a part of `make bench`"),
    ".venv/bin/python -m benchmarks.demo --runs 2": ("make bench", "a part of `make bench`"),
    ".venv/bin/python -m benchmarks.payables_sync --bills 20000 --changes 50": (
        "make bench",
        "a part of `make bench`; measure() runs at 150 bills in tests/localcloud/test_payables.py",
    ),
    "make openapi": (
        "tests/unit/ops/test_openapi.py::test_docs_openapi_json_is_what_the_handlers_generate",
        "writes docs/openapi.json; the test fails when the file differs from what it generates",
    ),
    "make install": ("make test", "a prerequisite of every target that runs Python"),
    'make demo DEMO_ARGS="--platform qhyg --bills 150 --faults"': (
        "tests/e2e/test_demo.py::test_make_demo_runs_the_demo_with_demo_args",
        "`make -n` shows the command; tests/e2e/test_journey.py plays those options",
    ),
    ".venv/bin/python -m localcloud demo --help": (
        "tests/e2e/test_demo.py::test_help_lists_the_options",
        "lists the demo's options",
    ),
    # Synth with overrides: each override is validated here against the stage model.
    '.venv/bin/python app.py -c stage=prod -c \'config={"alarm_email": "ops@example.com"}\'': (
        STAGE_CONFIG,
        SYNTH_SLOW,
    ),
    '.venv/bin/python app.py -c stage=prod -c \'config={"alarm_email": "oncall@example.com"}\'': (
        STAGE_CONFIG,
        SYNTH_SLOW,
    ),
    '.venv/bin/python app.py -c stage=dev -c \'config={"payments": {"maxAttempts": 3}}\'': (
        STAGE_CONFIG,
        SYNTH_SLOW,
    ),
    # Deploying: AWS. The CLI's own synth for an account is run offline.
    "make bootstrap": (CLI_SYNTH, NEEDS_AWS),
    "make deploy": (CLI_SYNTH, NEEDS_AWS),
    "make deploy STAGE=dev": (CLI_SYNTH, NEEDS_AWS),
    "make diff STAGE=dev": (CLI_SYNTH, NEEDS_AWS),
    "make diff STAGE=prod": (CLI_SYNTH, NEEDS_AWS),
    "npx cdk": (CLI_SYNTH, "the pinned CLI, run offline by the test"),
    "npx cdk deploy --all -c stage=$(STAGE)": (CLI_SYNTH, NEEDS_AWS),
    "npx cdk deploy --all -c stage=dev": (CLI_SYNTH, NEEDS_AWS),
    'npx cdk deploy --all -c stage=prod -c \'config={"alarm_email": "oncall@example.com", '
    '"webhook_source_cidrs": ["4.159.114.108/32", "20.117.190.191/32"]}\'': (CLI_SYNTH, NEEDS_AWS),
    "npx cdk diff --all -c stage=prod": (CLI_SYNTH, NEEDS_AWS),
    "npx cdk bootstrap aws://ACCOUNT/REGION": (CLI_SYNTH, NEEDS_AWS),
    "npx cdk bootstrap aws://111122223333/eu-west-2": (CLI_SYNTH, NEEDS_AWS),
    "CDK_DEFAULT_ACCOUNT=111122223333 AWS_REGION=eu-west-2 npx cdk synth -c stage=prod "
    "--output /tmp/billpay": (CLI_SYNTH, "the test runs this synth, offline, into its own folder"),
    "npx cdk flags --unstable=flags --safe": (
        CLI_NO_WARNING,
        "the CLI warns on every synth while a feature flag is unset; the test asserts no warning",
    ),
    "npx cdk destroy --all -c stage=dev": (RETAINED, NEEDS_AWS + "; what dev deletes is asserted"),
    "npx cdk destroy --all -c stage=prod": (RETAINED, NEEDS_AWS + "; what prod keeps is asserted"),
    # docs/local-cloud.md records a `cdk deploy` into moto that does NOT work, and why.
    "export AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing "
    "AWS_SECRET_ACCESS_KEY=testing": (
        "tests/localcloud/test_product_stack.py",
        "documented as unsupported (moto 5.2.5); the local cloud deploys cdk.out itself",
    ),
    "npx cdk bootstrap aws://123456789012/us-east-1": (
        "tests/localcloud/test_product_stack.py",
        "documented as unsupported (moto 5.2.5); the local cloud deploys cdk.out itself",
    ),
    "npx cdk deploy --all --require-approval never --app cdk.out": (
        "tests/localcloud/test_product_stack.py",
        "documented as unsupported (moto 5.2.5); the local cloud deploys cdk.out itself",
    ),
    "aws cloudformation list-stack-resources --stack-name CDKToolkit": (
        "tests/localcloud/test_product_stack.py",
        "part of the unsupported path above",
    ),
    # Operating a deployed stage: AWS.
    ".venv/bin/python -m ops codat-setup --stage dev": (CODAT_SETUP, NEEDS_AWS),
    ".venv/bin/python -m ops replay --stage dev --since 2026-11-25T10:00 --until 2026-11-25T12:00": (
        REPLAY,
        NEEDS_AWS,
    ),
    ".venv/bin/python -m ops replay --stage dev --since 2026-11-25T10:00 --until 2026-11-25T12:00 "
    "--company smb-1 --dry-run": (REPLAY, NEEDS_AWS),
    ".venv/bin/python -m ops redrive-dlq --stage dev": (REDRIVE, NEEDS_AWS),
    "aws secretsmanager put-secret-value --secret-id <CodatApiKeySecretArn> "
    "--secret-string '<api key>'": (
        DEV_SERVER,
        NEEDS_AWS + "; `make dev` puts the emulator's key in the same secret",
    ),
    "aws secretsmanager put-secret-value --secret-id <CodatWebhookSecretArn> "
    "--secret-string 'whsec_...'": (
        "tests/localcloud/test_webhooks.py",
        NEEDS_AWS + "; the local cloud puts the emulator's signing secret in the same secret",
    ),
    "aws secretsmanager put-secret-value --secret-id <page token key arn> --secret-string "
    "\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')\"": (
        "tests/unit/billpay/test_payables_api.py",
        NEEDS_AWS,
    ),
    "aws cloudformation describe-stacks --stack-name BillPay-dev-State": (
        "tests/localcloud/test_product_stack.py",
        NEEDS_AWS,
    ),
    "aws cloudformation describe-stack-resources --stack-name BillPay-dev-State": (
        "tests/localcloud/test_product_stack.py",
        NEEDS_AWS,
    ),
    "API=$(aws cloudformation describe-stacks --stack-name BillPay-dev-Service --query "
    "\"Stacks[0].Outputs[?OutputKey=='ApiUrl'].OutputValue\" --output text)": (
        "tests/localcloud/test_product_stack.py",
        NEEDS_AWS,
    ),
    "ARN=$(aws cloudformation describe-stacks --stack-name BillPay-dev-Service --query "
    "\"Stacks[0].Outputs[?OutputKey=='OnboardingStateMachineArn'].OutputValue\" --output text)": (
        ONBOARDING_LOCAL,
        NEEDS_AWS,
    ),
    'aws stepfunctions start-execution --state-machine-arn "$ARN" --name onboard-smb-1 --input '
    '\'{"companyId": "smb-1", "name": "Acme Ltd", "platformKey": "gbol"}\'': (
        ONBOARDING_LOCAL,
        NEEDS_AWS + "; the local-cloud tests start executions the same way",
    ),
    'curl -s -X POST "$API/companies" -H \'content-type: application/json\' -d \'{"companyId": '
    '"smb-1", "name": "Acme Ltd", "platformKey": "gbol", "redirectUrl": '
    '"https://app.example.com/linked", "tags": {"tier": "gold"}}\'': (
        ONBOARDING_LOCAL,
        NEEDS_AWS + "; the same body goes to the local API",
    ),
    'curl -s --aws-sigv4 "aws:amz:eu-west-2:execute-api" --user '
    '"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-security-token: $AWS_SESSION_TOKEN" '
    '-H \'content-type: application/json\' -X POST "$API/companies" -d \'{"companyId": '
    '"smb-1", "name": "Acme Ltd", "platformKey": "gbol"}\'': (
        "tests/infra/test_service_stack.py",
        NEEDS_AWS + " (IAM is not enforced locally); every method's AWS_IAM auth is asserted",
    ),
    "aws events put-rule --event-bus-name BillPay-dev-events --name relink --event-pattern "
    '\'{"source": ["billpay"], "detail-type": ["CompanyNeedsRelink"]}\'': (
        "tests/localcloud/test_webhooks.py",
        NEEDS_AWS + "; the local-cloud tests capture events on the bus with a rule",
    ),
    "aws events put-targets --event-bus-name BillPay-dev-events --rule relink --targets "
    "'Id=relink-queue,Arn=<your queue arn>'": ("tests/localcloud/test_webhooks.py", NEEDS_AWS),
    "aws dynamodb get-item --table-name <CompaniesTableName> --key "
    '\'{"companyId": {"S": "codat#rateLimit"}}\'': (
        "tests/unit/billpay/test_throttle.py",
        NEEDS_AWS + "; the item's layout is the throttle store's",
    ),
    "aws dynamodb get-item --table-name <PaymentsTableName> --key "
    '\'{"companyId": {"S": "smb-1"}, "itemKey": {"S": "payment#pay-1"}}\'': (
        "tests/unit/billpay/test_payments_repository.py",
        NEEDS_AWS + "; the key layout is the payments repository's",
    ),
    ".venv/bin/python -m ops settle-payment --stage dev --company smb-1 --payment pay-1 --paid "
    '--evidence "Xero payment 8841, 100.00 on 25 Nov" --operator ops@acme': (
        SETTLE,
        "needs a deployed stage; the test runs the same command against the local cloud",
    ),
    ".venv/bin/python -m ops settle-payment --stage dev --company smb-1 --payment pay-1 --failed "
    '--evidence "not on the bill in Xero" --operator ops@acme': (
        SETTLE,
        "needs a deployed stage; the test runs the same command against the local cloud",
    ),
    "aws stepfunctions start-execution --state-machine-arn <PayablesSyncStateMachineArn> --name "
    'full-smb-1-2026-11-25 --input \'{"companyId": "smb-1", "runId": '
    '"full-smb-1-2026-11-25", "full": true}\'': ("tests/localcloud/test_payables.py", NEEDS_AWS),
    "aws dynamodb scan --table-name ...": (DEV_SERVER, "needs `make dev`"),
    # Tear-down of what prod retains: AWS.
    "aws cloudformation update-termination-protection --no-enable-termination-protection "
    "--stack-name BillPay-prod-State": (RETAINED, NEEDS_AWS),
    "aws dynamodb update-table --table-name <table> --no-deletion-protection-enabled": (
        RETAINED,
        NEEDS_AWS,
    ),
    "aws dynamodb delete-table --table-name <table>": (RETAINED, NEEDS_AWS),
    "aws secretsmanager delete-secret --secret-id <secret arn> --recovery-window-in-days 7": (
        RETAINED,
        NEEDS_AWS,
    ),
    "aws logs delete-log-group --log-group-name <log group>": (RETAINED, NEEDS_AWS),
    "aws kms schedule-key-deletion --key-id <key id> --pending-window-in-days 7": (
        RETAINED,
        NEEDS_AWS,
    ),
    "aws resourcegroupstaggingapi get-resources --tag-filters Key=stage,Values=prod": (
        RETAINED,
        NEEDS_AWS + "; every resource's tags are asserted by tests/infra",
    ),
}


def test_every_command_is_run_or_mapped():
    unknown = [
        str(command)
        for command in ALL_COMMANDS
        if command.text not in RUN_HERE and command.text not in MAPPED
    ]
    assert not unknown, (
        "commands in the docs that no test runs: run them in RUN_HERE (if cheap and offline) or "
        "map them in MAPPED to the test that runs them:\n" + "\n".join(unknown)
    )


def test_no_entry_is_left_over():
    """An entry whose command left the docs would vouch for nothing: remove it."""
    texts = {command.text for command in ALL_COMMANDS}
    assert sorted(set(RUN_HERE) - texts) == []
    assert sorted(set(MAPPED) - texts) == []


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, flags=re.MULTILINE))


def _makefile_variables() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Z_]+)\s*[?:]?=", text, flags=re.MULTILINE))


def test_every_mapped_test_or_target_exists():
    targets = _makefile_targets()
    for command, (evidence, reason) in MAPPED.items():
        assert reason, command
        if evidence.startswith("make "):
            assert evidence.split()[1] in targets, f"{command}: no target {evidence!r}"
            continue
        file, _, test = evidence.partition("::")
        source = ROOT / file
        assert source.is_file(), f"{command}: {file} does not exist"
        if test:
            assert re.search(rf"^def {re.escape(test)}\(", source.read_text(), re.MULTILINE), (
                f"{command}: {file} has no test {test}"
            )


@pytest.mark.parametrize("command", sorted(RUN_HERE))
def test_the_cheap_commands_run(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["API"] = "https://example.execute-api.eu-west-2.amazonaws.com/dev/"
    env["CODAT_EMULATOR_API_KEY"] = secrets.token_urlsafe(24)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- what every command is checked for, whatever its category --------------------------------------


def test_make_commands_name_real_targets_and_variables():
    targets, variables = _makefile_targets(), _makefile_variables()
    for command in ALL_COMMANDS:
        if not command.text.startswith("make "):
            continue
        for word in shlex.split(command.text)[1:]:
            if "=" in word:
                assert word.split("=")[0] in variables, f"{command}: no variable {word}"
            else:
                assert word in targets, f"{command}: no target {word}"


def _ops_argv(text: str) -> list[str] | None:
    words = shlex.split(text)
    for i in range(len(words) - 1):
        if words[i] == "-m" and words[i + 1] == "ops":
            return words[i + 2 :]
    return None


def test_ops_commands_parse_with_the_real_parser():
    from ops.__main__ import _parser

    checked = 0
    for command in ALL_COMMANDS:
        argv = _ops_argv(command.text)
        if argv is None:
            continue
        try:
            _parser().parse_args(argv)
        except SystemExit as exit_:
            pytest.fail(f"{command}: does not parse ({exit_})")
        checked += 1
    assert checked >= 4


_AWS_GLOBAL = {"--query", "--output", "--region", "--profile", "--endpoint-url", "--no-cli-pager"}


def _aws_invocations(text: str) -> list[list[str]]:
    """Every `aws ...` in the command, also inside `$(...)`, as words."""
    found = []
    for match in re.finditer(r"(?:^|\$\()aws ", text):
        rest = text[match.start() :]
        if rest.startswith("$("):
            rest = rest[2 : rest.rindex(")")]
        found.append(shlex.split(rest))
    return found


def _key(name: str) -> str:
    return name.replace("-", "").lower()


def test_aws_commands_match_botocores_service_models():
    session = botocore.session.get_session()
    checked = 0
    for command in ALL_COMMANDS:
        for words in _aws_invocations(command.text):
            service, operation, *args = words[1:]
            model = session.get_service_model(service)
            operations = {_key(name): name for name in model.operation_names}
            assert _key(operation) in operations, f"{command}: {service} has no {operation}"
            shape = model.operation_model(operations[_key(operation)]).input_shape
            members = {_key(name): name for name in shape.members} if shape else {}
            given = set()
            options = [a for a in args if a.startswith("--") and a not in _AWS_GLOBAL]
            for option in options:
                name = option[2:]
                if name.startswith("no-") and _key(name[3:]) in members:
                    name = name[3:]
                    member = shape.members[members[_key(name)]]
                    assert member.type_name == "boolean", f"{command}: {option} is not a switch"
                assert _key(name) in members, f"{command}: {service} {operation} has no {option}"
                given.add(members[_key(name)])
            required = set(shape.required_members) if shape else set()
            assert required <= given, f"{command}: missing {sorted(required - given)}"
            checked += 1
    assert checked >= 10


def test_stack_outputs_named_in_commands_exist():
    outputs = {
        value
        for name, value in vars(constants).items()
        if name.startswith("OUTPUT_") and isinstance(value, str)
    }
    for command in ALL_COMMANDS:
        named = re.findall(r"OutputKey=='(\w+)'", command.text)
        named += [
            p for p in re.findall(r"<(\w+)>", command.text) if re.search(r"(Arn|Name|Url)$", p)
        ]
        for output in named:
            assert output in outputs, f"{command}: the stacks have no output {output}"


def test_config_overrides_in_commands_are_valid_stage_settings():
    checked = 0
    for command in ALL_COMMANDS:
        if not re.search(r"(app\.py|npx cdk) ", command.text) or "config=" not in command.text:
            continue
        words = shlex.split(command.text)
        context = dict(
            words[i + 1].split("=", 1) for i, word in enumerate(words[:-1]) if word == "-c"
        )
        config = load_stage(context.get("stage"), context["config"])
        assert json.loads(context["config"]).keys() <= config.model_dump().keys()
        checked += 1
    assert checked >= 3


def test_emulator_curls_hit_its_routes():
    from starlette.routing import Match

    from codat_emulator.app import create_app
    from codat_emulator.config import EmulatorConfig

    app = create_app(EmulatorConfig(api_key="k" * 24))
    checked = 0
    for command in ALL_COMMANDS:
        if "curl " not in command.text or "$E" not in command.text:
            continue
        words = shlex.split(command.text.replace("$CO", "co-1").replace("$CONN", "conn-1"))
        (url,) = [w for w in words if w.startswith("$E")]
        method = "POST" if "-d" in words else "GET"
        scope = {"type": "http", "path": url.removeprefix("$E"), "method": method}
        matches = [route.matches(scope)[0] for route in app.routes]
        assert Match.FULL in matches, f"{command}: no {method} route for {scope['path']}"
        checked += 1
    assert checked >= 6


# -- the code and payloads the docs show -------------------------------------------------------------


def _blocks(path: Path, language: str) -> list[str]:
    pattern = rf"^```{language}\n(.*?)^```"
    return re.findall(pattern, path.read_text(), flags=re.MULTILINE | re.DOTALL)


def test_the_sigv4_example_signs_a_request(monkeypatch):
    (source,) = [b for b in _blocks(ROOT / "docs" / "integration.md", "python") if "SigV4" in b]
    key_id = "AKIA" + secrets.token_hex(8).upper()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secrets.token_urlsafe(30))
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    namespace: dict[str, object] = {}
    exec(compile(source, "docs/integration.md", "exec"), namespace)  # noqa: S102 - the doc's own code
    url = "https://abc123.execute-api.eu-west-2.amazonaws.com/dev/companies"
    body = {"companyId": "smb-1", "name": "Acme Ltd", "platformKey": "gbol"}
    request = namespace["signed_request"]("POST", url, body, "eu-west-2")  # type: ignore[operator]
    headers = {k.lower(): v for k, v in request.header_items()}
    assert request.get_method() == "POST"
    assert request.full_url == url
    assert json.loads(request.data) == body
    assert headers["content-type"] == "application/json"
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={key_id}/")
    assert "/eu-west-2/execute-api/aws4_request" in headers["authorization"]
    assert re.fullmatch(r"\d{8}T\d{6}Z", headers["x-amz-date"])


def _event_models() -> dict[str, type]:
    from billpay.events.models import DomainEvent
    from billpay.onboarding import events as onboarding_events  # noqa: F401 - registers them

    models: dict[str, type] = {}
    pending = list(DomainEvent.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        # The shipped events only: tests define their own subclasses.
        if "DETAIL_TYPE" in vars(model) and model.__module__.startswith("billpay."):
            models[model.DETAIL_TYPE] = model
    return models


def test_every_event_is_documented_and_every_example_parses():
    events_md = ROOT / "docs" / "events.md"
    models = _event_models()
    assert len(models) >= 11
    text = events_md.read_text()
    undocumented = [name for name in models if name not in text]
    assert not undocumented, f"events.md does not describe {undocumented}"
    examples = [json.loads(block) for block in _blocks(events_md, "json")]
    shown = set()
    for example in examples:
        model = models[example["detail-type"]]
        assert example["source"] == "billpay"
        detail = dict(example["detail"])
        assert detail.pop("schemaVersion") == model.SCHEMA_VERSION
        fields = {info.alias or name for name, info in model.model_fields.items()}
        assert detail.keys() <= fields, f"{model.__name__}: unknown {detail.keys() - fields}"
        model.model_validate(detail)
        shown.add(example["detail-type"])
    assert len(shown) >= 8


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_relative_links_and_anchors_resolve():
    broken = []
    for path in DOCS:
        text = path.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
                continue
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.MULTILINE)
                if anchor not in {_slug(h) for h in headings}:
                    broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
