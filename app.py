#!/usr/bin/env python3
"""CDK entry point: synthesizes every stack of the chosen stage into cdk.out.

Run by the CDK CLI (`cdk.json`), or directly: `python app.py -c stage=prod`. Run directly, it reads
the context in cdk.json and `-c key=value` arguments itself, as the CLI would.
"""

import sys

from infra.app import build_app, cli_context

if __name__ == "__main__":
    app = build_app(context=cli_context(sys.argv[1:]))[0]
    app.synth()
