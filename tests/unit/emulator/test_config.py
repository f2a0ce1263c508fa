"""EmulatorConfig is the one place the emulator reads its environment."""

import pytest

from codat_emulator.config import ConfigError, EmulatorConfig


def test_webhook_and_link_settings_come_from_their_variables():
    config, generated = EmulatorConfig.from_env(
        {
            "CODAT_EMULATOR_API_KEY": "a-key-from-the-test-env",
            "CODAT_EMULATOR_WEBHOOK_TIME_SCALE": "0.01",
            "CODAT_EMULATOR_WEBHOOK_OUT_OF_ORDER": "yes",
            "CODAT_EMULATOR_LINK_REDIRECT": "https://app.example/done/{companyId}?s={statusCode}",
            "CODAT_EMULATOR_SEED_BILLS": "250",
            "CODAT_EMULATOR_SEED": "fixed",
        }
    )
    assert generated is False
    assert config.webhooks.time_scale == 0.01
    assert config.webhooks.out_of_order is True
    assert config.link.redirect_template == "https://app.example/done/{companyId}?s={statusCode}"
    assert config.link.bills == 250
    assert config.link.seed == "fixed"


def test_defaults_without_variables_and_a_generated_key():
    config, generated = EmulatorConfig.from_env({})
    assert generated is True
    assert len(config.api_key) >= 24
    assert config.webhooks.timeout_seconds == 15.0
    assert config.link.redirect_template is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CODAT_EMULATOR_WEBHOOK_TIME_SCALE", "fast"),
        ("CODAT_EMULATOR_WEBHOOK_DUPLICATE", "maybe"),
        ("CODAT_EMULATOR_SEED_BILLS", "-1"),
        ("CODAT_EMULATOR_SEED_BILLS", "1000001"),
        ("CODAT_EMULATOR_LINK_REDIRECT", "javascript:alert(1)"),
        ("CODAT_EMULATOR_PORT", "70000"),
    ],
)
def test_a_bad_variable_is_an_error_that_names_it(variable, value):
    with pytest.raises(ConfigError, match=variable):
        EmulatorConfig.from_env({variable: value})
