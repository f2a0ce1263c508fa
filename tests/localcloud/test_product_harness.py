"""The product wired to the Codat emulator: what the harness sets is really what functions see."""

from __future__ import annotations

import base64

import httpx

from localcloud.lambda_runner import lambda_environment


def test_every_function_calls_the_emulator_with_the_key_from_secrets_manager(product_with_codat):
    # Given the product deployed on the local cloud next to the emulator
    cloud, emulator = product_with_codat.cloud, product_with_codat.emulator
    names = product_with_codat.function_names()
    assert names
    # Then every function's environment points at the emulator, on top of its template's values
    lambda_client = cloud.client("lambda")
    for name in names:
        env = lambda_client.get_function_configuration(FunctionName=name)["Environment"]
        assert env["Variables"]["CODAT_BASE_URL"] == emulator.base_url
        assert env["Variables"]["STAGE"] == "dev"
    # And the API key secret opens the emulator, as the Codat key opens Codat
    arn = cloud.output("CodatApiKeySecretArn")
    key = cloud.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    basic = "Basic " + base64.b64encode(key.encode()).decode()
    answer = httpx.get(f"{emulator.base_url}/companies", headers={"Authorization": basic})
    assert answer.status_code == 200, answer.text


def test_the_lambda_runner_hands_the_overrides_to_the_handler(product_with_codat):
    # The runner builds a handler's environment from moto's function record: the same record
    # update_function_configuration changed.
    from moto.backends import get_backend

    cloud = product_with_codat.cloud
    name = product_with_codat.function_names()[0]
    backend = get_backend("lambda")[cloud.account_id][cloud.region]
    fn = backend.get_function(name)
    assert lambda_environment(fn)["CODAT_BASE_URL"] == product_with_codat.emulator.base_url
