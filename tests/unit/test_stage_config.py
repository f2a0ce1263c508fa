import pytest
from pydantic import ValidationError

from infra.config import load_stage


def test_default_stage_is_dev():
    assert load_stage(None).stage == "dev"


def test_prod_retains_data():
    assert load_stage("prod").retain_data is True


def test_unknown_stage_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown stage 'qa'"):
        load_stage("qa")


def test_overrides_from_json_context_are_validated():
    assert load_stage("dev", '{"alarm_email": "ops@example.com"}').alarm_email == "ops@example.com"
    with pytest.raises(ValueError, match="not a JSON object"):
        load_stage("dev", "{nope")
    with pytest.raises(ValidationError):
        load_stage("dev", {"lambda_memory_mb": 64})
    with pytest.raises(ValidationError):
        load_stage("dev", {"no_such_setting": 1})


def test_onboarding_timings_have_defaults_and_bounds():
    timings = load_stage("dev").onboarding_timings
    assert timings.link_expiry_seconds == 7 * 86_400
    custom = load_stage(
        "dev",
        {
            "onboarding_timings": {
                "reconcile_interval_seconds": 600,
                "link_expiry_seconds": 3 * 86_400,
                "initial_read_timeout_seconds": 3600,
            }
        },
    )
    assert custom.onboarding_timings.reconcile_interval_seconds == 600
    with pytest.raises(ValidationError):
        load_stage(
            "dev",
            {
                "onboarding_timings": {
                    "reconcile_interval_seconds": 0,
                    "link_expiry_seconds": 1,
                    "initial_read_timeout_seconds": 1,
                }
            },
        )
