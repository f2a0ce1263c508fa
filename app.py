#!/usr/bin/env python3
"""CDK entry point: synthesizes every stack of the chosen stage into cdk.out.

Run by the CDK CLI (`cdk.json`), or directly: `python app.py -c stage=prod`. Run directly, it reads
the context in cdk.json and `-c key=value` arguments itself, as the CLI would.
"""

import os
import sys

# jsii, which runs the CDK's JavaScript for this Python app, prints a banner about Node 20's end of
# life on every synth: a fact about the machine's Node, not about this app, and Node 20 is what the
# project's machines and CI run (the Makefile silences it the same way for every make target). Set
# here, before aws_cdk starts jsii, so a bare `npx cdk synth` or `npx cdk deploy` is as quiet as
# `make deploy`. Only Node 20's notice, and only where the variable is not already set.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infra.app import build_app, cli_context  # after the variable: jsii reads it as it starts

if __name__ == "__main__":
    app = build_app(context=cli_context(sys.argv[1:]))[0]
    app.synth()
