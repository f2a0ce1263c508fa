"""`python -m localcloud dev|demo`: the synthesized stack running on this machine.

dev   moto server + cdk.out deployed + the local API, on fixed ports, next to a fresh Codat
      emulator the product calls as Codat, until Ctrl-C. Prints each onboarding's status as it
      changes, with the Link page to open while it waits for authorization; `--onboard NAME`
      starts one at once.
demo  cdk.out on an in-process local cloud next to a fresh Codat emulator, then the Bill Pay
      journey (onboarding, bills, payments, a change in the accounting software), then exit.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from localcloud.deploy import Deployment

# moto takes seconds to import; the CLI imports it only once the arguments, the cloud assembly
# and the ports have been checked, so those mistakes are reported at once.

HOST = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
RUNNER_MODES = ("in-process", "subprocess")
DEFAULT_API_PORT = 3000
DEFAULT_MOTO_PORT = 5000
EXIT_PORT_IN_USE = 3
EXIT_NOT_SYNTHESIZED = 2
EXIT_DEPLOY_FAILED = 4
EXIT_ONBOARDING_NOT_STARTED = 5
# The demo pays two Open bills and changes two more in the accounting software.
MIN_DEMO_BILLS = 10


@dataclass
class RunningCloud:
    deployment: Deployment
    api_url: str
    moto_url: str
    # Every REST API served: logical id -> URL (the default API first).
    api_urls: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        from localcloud.deploy import client_factory

        return client_factory(self.deployment.region, self.moto_url)(service)

    def output(self, key: str) -> str:
        return self.deployment.output(key)

    def local_url(self, aws_url: str) -> str:
        """The local address of a deployed API's URL (its host's first label is the API id)."""
        parts = urlsplit(aws_url)
        api_id = (parts.hostname or "").split(".", 1)[0]
        for stack in self.deployment.stacks.values():
            for logical_id, url in self.api_urls.items():
                if stack.physical_ids.get(logical_id) == api_id:
                    return url + parts.path
        raise KeyError(f"{aws_url} is not the URL of a served REST API")


class CliError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a port number") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("dev", "keep the local cloud running (Ctrl-C stops it)"),
        ("demo", "play the Bill Pay journey on a fresh local cloud and Codat emulator, then exit"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--cdk-out",
            type=Path,
            default=Path(os.environ.get("CDK_OUTDIR", "cdk.out")),
            help="the synthesized cloud assembly (default: cdk.out, or $CDK_OUTDIR)",
        )
        if name == "dev":
            command.add_argument(
                "--runner",
                choices=RUNNER_MODES,
                default=os.environ.get("LOCALCLOUD_RUNNER", "in-process"),
                help="where handlers run (default in-process, or $LOCALCLOUD_RUNNER)",
            )
            command.add_argument("--region", default=DEFAULT_REGION)
            command.add_argument("--rest-api", default=None, help="which REST API to serve")
            command.add_argument(
                "--api-port",
                type=int,
                default=_env_int("LOCALCLOUD_API_PORT", DEFAULT_API_PORT),
                help=f"local API port (default {DEFAULT_API_PORT}, or $LOCALCLOUD_API_PORT)",
            )
            command.add_argument(
                "--moto-port",
                type=int,
                default=_env_int("LOCALCLOUD_MOTO_PORT", DEFAULT_MOTO_PORT),
                help=f"moto server port (default {DEFAULT_MOTO_PORT}, or $LOCALCLOUD_MOTO_PORT)",
            )
            command.add_argument(
                "--time-scale",
                type=float,
                default=float(os.environ.get("LOCALCLOUD_TIME_SCALE", "1.0")),
                help="scale Wait states and Retry intervals (default 1.0 = real time)",
            )
            command.add_argument(
                "--onboard",
                metavar="NAME",
                action="append",
                default=[],
                help="start onboarding a company of this name once up, and print its Link page "
                "(repeatable)",
            )
            command.add_argument(
                "--platform",
                default="gbol",
                help="the accounting platform --onboard links (default gbol, Xero)",
            )
        else:
            _demo_options(command)
    return parser


def _platform(value: str) -> str:
    from codat_emulator.store import PLATFORMS

    for key, name in PLATFORMS.items():
        if value.lower() in (key, name.lower()):
            return key
    known = ", ".join(f"{key} ({name})" for key, name in PLATFORMS.items())
    raise argparse.ArgumentTypeError(f"{value!r} is not a platform the emulator knows: {known}")


def _bills(value: str) -> int:
    from codat_emulator.seed import MAX_BILLS

    try:
        bills = int(value)
    except ValueError:
        bills = -1
    if not MIN_DEMO_BILLS <= bills <= MAX_BILLS:
        raise argparse.ArgumentTypeError(
            f"give a number of bills from {MIN_DEMO_BILLS} to {MAX_BILLS}"
        )
    return bills


def _demo_options(command: argparse.ArgumentParser) -> None:
    from codat_emulator.seed import DEFAULT_BILLS

    command.add_argument(
        "--platform",
        type=_platform,
        default="gbol",
        help="the SMB's accounting platform: a key or name the emulator knows, e.g. qhyg or "
        "'QuickBooks Online' (default gbol, Xero)",
    )
    command.add_argument(
        "--bills",
        type=_bills,
        default=DEFAULT_BILLS,
        help=f"bills in the SMB's books (default {DEFAULT_BILLS})",
    )
    command.add_argument(
        "--faults",
        action="store_true",
        help="Codat answers a 503 and a 429 on the way and a payment ambiguously (applied, then "
        "a 500): watch the retries and the reconciliation",
    )


@contextlib.contextmanager
def running_cloud(
    cdk_out: Path,
    *,
    api_port: int,
    moto_port: int,
    runner: str,
    region: str,
    rest_api: str | None = None,
    time_scale: float = 1.0,
    progress: Callable[[str], None] = lambda line: None,
) -> Iterator[RunningCloud]:
    if not (cdk_out / "manifest.json").is_file():
        raise CliError(
            f"no cloud assembly at {cdk_out.resolve()}: run `make synth` first",
            EXIT_NOT_SYNTHESIZED,
        )
    wanted = [
        ("the local API", api_port, "--api-port / LOCALCLOUD_API_PORT"),
        ("the moto server", moto_port, "--moto-port / LOCALCLOUD_MOTO_PORT"),
    ]
    if api_port:
        # Each further REST API is served on the ports after --api-port: checked now, not after
        # seconds of deploying.
        for offset in range(1, _rest_api_count(cdk_out)):
            wanted.append(
                (
                    f"REST API number {offset + 1} (on --api-port + {offset})",
                    api_port + offset,
                    "--api-port (0 for free ports)",
                )
            )
    for label, port, flag in wanted:
        if port != 0 and not port_is_free(HOST, port):
            raise CliError(
                f"port {port} on {HOST} is already in use, so {label} cannot start. Stop what "
                f"listens there (another `make dev`?) or choose another port with {flag}.",
                EXIT_PORT_IN_USE,
            )
    # Fake credentials: boto3 insists on some, and none must ever reach AWS from here.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ[key] = "localcloud"
    os.environ["AWS_DEFAULT_REGION"] = region
    progress("loading moto")
    from localcloud import moto_runtime
    from localcloud.deploy import DeployError, client_factory, deploy_assembly
    from localcloud.gateway import GatewayError, GatewayServer, LocalApi, rest_api_ids
    from localcloud.lambda_runner import RunnerMode

    moto_runtime.set_time_scale(time_scale)
    try:
        with moto_runtime.moto_server(HOST, moto_port, RunnerMode(runner), region) as moto_url:
            progress(f"moto server on {moto_url}; deploying {cdk_out}")
            clients = client_factory(region, moto_url)
            deploying = time.monotonic()
            try:
                deployment = deploy_assembly(cdk_out, clients)
            except DeployError as exc:
                raise CliError(f"deploy failed: {exc}", EXIT_DEPLOY_FAILED) from exc
            progress(
                f"deployed {len(deployment.stacks)} stacks in {time.monotonic() - deploying:.1f}s"
            )
            default = rest_api or next(iter(rest_api_ids(deployment)), None)
            local_api = LocalApi(deployment, clients, rest_api=default)
            default_id = local_api.api.info.logical_id
            others = [i for i in rest_api_ids(deployment) if i != default_id]
            with contextlib.ExitStack() as servers:
                # The default API on --api-port, each other REST API on the ports after it.
                gateway = servers.enter_context(GatewayServer(local_api, HOST, api_port))
                urls = {default_id: gateway.url}
                for offset, logical_id in enumerate(others, start=1):
                    api = LocalApi(deployment, clients, rest_api=logical_id)
                    port = api_port + offset if api_port else 0
                    try:
                        server = GatewayServer(api, HOST, port)
                    except GatewayError as exc:
                        raise GatewayError(
                            f"{exc}: the REST API {logical_id} is served on the port after "
                            f"--api-port's ({api_port} + {offset}). Choose another --api-port, "
                            "or 0 for free ports."
                        ) from exc
                    urls[logical_id] = servers.enter_context(server).url
                yield RunningCloud(deployment, gateway.url, moto_url, urls)
    except (moto_runtime.MotoServerPortInUse, GatewayError) as exc:
        raise CliError(str(exc), EXIT_PORT_IN_USE) from exc


def _rest_api_count(cdk_out: Path) -> int:
    """How many REST APIs the cloud assembly's stacks define (its manifest and templates)."""
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    count = 0
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") == "aws:cloudformation:stack":
            template = json.loads((cdk_out / artifact["properties"]["templateFile"]).read_text())
            resources = template.get("Resources", {}).values()
            count += sum(1 for r in resources if r.get("Type") == "AWS::ApiGateway::RestApi")
    return count


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers do: a port in TIME_WAIT after a restart is free, a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _print_summary(cloud: RunningCloud, started: float) -> None:
    print(f"local cloud up in {time.monotonic() - started:.1f}s", flush=True)
    print(f"  local API:   {cloud.api_url}")
    for logical_id, url in list(cloud.api_urls.items())[1:]:
        print(f"  other API:   {url}  ({logical_id})")
    print(f"  moto server: {cloud.moto_url}  (AWS_ENDPOINT_URL={cloud.moto_url} for aws/boto3)")
    for stack, outputs in cloud.deployment.all_outputs().items():
        print(f"  {stack} outputs:")
        for key, value in sorted(outputs.items()):
            print(f"    {key} = {value}")
    for item in cloud.deployment.handled:
        print(f"  note: {item.describe()}")


@contextlib.contextmanager
def _stop_on_signal() -> Iterator[threading.Event]:
    """SIGINT and SIGTERM set the event instead of raising, from now until the block ends."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _say(line: str) -> None:
    # One line at a time, flushed: stdout is block-buffered when it is a pipe (a test, `| tee`).
    print(line, flush=True)


def dev(args: argparse.Namespace) -> int:
    started = time.monotonic()
    requests = []
    if args.onboard:
        # Checked as the API will check them, before seconds of starting up.
        from localcloud.onboardings import OnboardingNotStarted, onboarding_request

        for name in args.onboard:
            try:
                requests.append(onboarding_request(name, args.platform))
            except OnboardingNotStarted as exc:
                raise CliError(f"--onboard {name!r}: {exc}", EXIT_ONBOARDING_NOT_STARTED) from exc
    with running_cloud(
        args.cdk_out,
        api_port=args.api_port,
        moto_port=args.moto_port,
        runner=args.runner,
        region=args.region,
        rest_api=args.rest_api,
        time_scale=args.time_scale,
        progress=_say,
    ) as cloud:
        from codat_emulator.testing import running_emulator
        from localcloud.onboardings import (
            OUTPUT_COMPANIES_TABLE_NAME,
            OnboardingNotStarted,
            OnboardingWatcher,
            start_onboarding,
        )
        from localcloud.product import (
            OUTPUT_CODAT_API_KEY_SECRET_ARN,
            OUTPUT_WEBHOOK_URL,
            connect_to_emulator,
            connect_webhooks,
        )

        outputs = {key for o in cloud.deployment.all_outputs().values() for key in o}
        with contextlib.ExitStack() as stack:
            _print_summary(cloud, started)
            # The product calls Codat: here, an emulator on 127.0.0.1, never the internet.
            if OUTPUT_CODAT_API_KEY_SECRET_ARN in outputs:
                codat = stack.enter_context(running_emulator())
                connect_to_emulator(cloud, codat)
                print(f"  Codat emulator: {codat.base_url}  (API key {codat.api_key})")
                if OUTPUT_WEBHOOK_URL in outputs:
                    print(f"    its signed webhooks go to {connect_webhooks(cloud, codat)}")
            if OUTPUT_COMPANIES_TABLE_NAME in outputs:
                watcher = OnboardingWatcher(
                    cloud.client("dynamodb"), cloud.output(OUTPUT_COMPANIES_TABLE_NAME), _say
                )
                stack.callback(watcher.stop)
                watcher.start()
                print(
                    f"  onboardings: POST {cloud.api_url}/companies starts one; each status "
                    "change is printed here, with the Link page to open while it waits"
                )
            for request in requests:
                try:
                    start_onboarding(cloud.api_url, request)
                except OnboardingNotStarted as exc:
                    raise CliError(
                        f"--onboard {request.name!r}: {exc}", EXIT_ONBOARDING_NOT_STARTED
                    ) from exc
                _say(
                    f"started onboarding {request.company_id} ({request.name}) "
                    f"on {request.platform_key}"
                )
            # Unwound first: the workflows stop while the emulator and moto still answer, so no
            # step fails against a stopped Codat and records a failure that never happened.
            stack.callback(_stop_running_executions, cloud)
            # Listen for Ctrl-C before saying so: a signal right after the banner stops cleanly.
            stop = stack.enter_context(_stop_on_signal())
            _say("Ctrl-C stops it.")
            while not stop.wait(0.5):
                pass
            _say("stopping the local cloud")
    _say("stopped")
    return 0


def _stop_running_executions(cloud: RunningCloud) -> None:
    """StopExecution on every running workflow (ABORTED, as on AWS; a parked wait ends at once,
    moto_runtime patch 9), then say how many. Stopping goes on if this fails."""
    sfn = cloud.client("stepfunctions")
    stopped = 0
    try:
        for machines in sfn.get_paginator("list_state_machines").paginate():
            for machine in machines["stateMachines"]:
                pages = sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
                )
                for page in pages:
                    for execution in page["executions"]:
                        sfn.stop_execution(
                            executionArn=execution["executionArn"],
                            error="LocalCloudStopped",
                            cause="the local cloud was stopped (Ctrl-C)",
                        )
                        stopped += 1
    except Exception as exc:  # the servers still stop; say what was left
        _say(f"could not stop every running workflow execution: {exc}")
    _say(f"stopped {stopped} running workflow execution{'' if stopped == 1 else 's'}")


def demo(args: argparse.Namespace) -> int:
    if not (args.cdk_out / "manifest.json").is_file():
        raise CliError(
            f"no cloud assembly at {args.cdk_out.resolve()}: run `make synth` first",
            EXIT_NOT_SYNTHESIZED,
        )
    from localcloud.demo import DemoOptions, run_demo

    options = DemoOptions(platform_key=args.platform, bills=args.bills, faults=args.faults)
    return run_demo(args.cdk_out, options)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # moto's server logs every request it serves; the local API's own access log is enough. The
    # deploy's stripped/emulated list is printed once in the summary.
    for noisy in ("werkzeug", "botocore", "httpx", "localcloud.deploy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return dev(args) if args.command == "dev" else demo(args)
    except CliError as exc:
        print(f"localcloud: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    finally:
        # All stopped by now. The interpreter's teardown would walk everything moto and the
        # deployment allocated in repeated garbage collections: ~5 s after "stopped" without
        # this, ~1 s with it (measured on `make dev` with the product's cdk.out).
        gc.freeze()
