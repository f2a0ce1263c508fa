"""python -m ops {codat-setup,replay,redrive-dlq} --stage dev ...  (docs/operations.md)

python -m ops openapi > docs/openapi.json  (the product API's OpenAPI document)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import boto3

from billpay.webhooks.queue import SqsWebhookQueue
from billpay.webhooks.store import DynamoWebhookStore
from ops import codat_setup, stage, webhooks

DEFAULT_CODAT_URL = "https://api.codat.io"


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("codat-setup", help="register the webhook consumer, sync settings")
    replay = commands.add_parser("replay", help="re-drive stored webhooks of a time window")
    replay.add_argument("--since", type=_moment, required=True, help="ISO time, UTC if no offset")
    replay.add_argument("--until", type=_moment, required=True, help="ISO time (exclusive)")
    replay.add_argument("--company", help="only this product company id")
    replay.add_argument("--dry-run", action="store_true", help="count, send nothing")
    redrive = commands.add_parser("redrive-dlq", help="move dead-lettered webhooks back")
    commands.add_parser("openapi", help="print the product API's OpenAPI document (no stage)")
    for command in (setup, replay, redrive):
        command.add_argument("--stage", required=True, help="dev, prod, ...")
        command.add_argument("--region", default=None)
    setup.add_argument("--codat-url", default=DEFAULT_CODAT_URL)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "openapi":
        from ops import openapi  # imports the API handler: only for this command

        sys.stdout.write(openapi.render())
        return 0
    session = boto3.session.Session(region_name=args.region)
    deployed = stage.load_stage(args.stage, session.client("cloudformation"))
    if args.command == "codat-setup":
        key = session.client("secretsmanager").get_secret_value(
            SecretId=deployed.output(stage.CODAT_API_KEY_SECRET)
        )["SecretString"]
        with codat_setup.codat_client(args.codat_url, key) as codat:
            result = codat_setup.ensure_webhook_consumer(codat, deployed.output(stage.WEBHOOK_URL))
            synced = codat_setup.ensure_sync_settings(codat)
        print(f"webhook consumer {result.consumer['id']}: "
              f"{'created' if result.created else 'already registered'}")  # fmt: skip
        if result.created:
            print("  copy its signing secret from Codat's portal into the webhook secret "
                  "(docs/operations.md)")  # fmt: skip
        if result.missing_event_types:
            print(f"  it lacks event types {list(result.missing_event_types)}: add them in the "
                  "portal (recreating it would change its signing secret)")  # fmt: skip
        print(f"sync settings: {'written' if synced else 'already as wanted'}")
        return 0
    sqs = session.client("sqs")
    if args.command == "replay":
        store = DynamoWebhookStore(
            session.client("dynamodb"), deployed.output(stage.WEBHOOK_EVENTS_TABLE)
        )
        report = webhooks.replay(
            store, SqsWebhookQueue(sqs, deployed.output(stage.WEBHOOK_QUEUE)),
            args.since, args.until, args.company, args.dry_run,
        )  # fmt: skip
        print(f"{'would send' if args.dry_run else 'sent'} {sum(report.by_event_type.values())} "
              f"events ({report.already_applied} already applied): {report.by_event_type}")  # fmt: skip
        return 0
    moved = webhooks.redrive_dead_letters(
        sqs, deployed.output(stage.WEBHOOK_DLQ), deployed.output(stage.WEBHOOK_QUEUE)
    )
    print(f"moved {moved} messages from the dead-letter queue back to processing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
