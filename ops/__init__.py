"""Operator commands for a deployed stage (`python -m ops --help`): Codat setup, replay, DLQ redrive.

They run on an operator's machine with AWS credentials for the stage, find every resource through
the stacks' outputs, and are safe to repeat: setup is idempotent and processing dedupes on the
webhook id.
"""
