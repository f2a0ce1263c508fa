"""Handlers of the local cloud's own fixture CDK app (tests/localcloud/fixture_app)."""
