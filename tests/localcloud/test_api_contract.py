"""The product API against its OpenAPI document (docs/openapi.json), property-based (schemathesis):
every operation, with requests that fit the document and requests that do not, sent over HTTP to
the local API (the synthesized stack on the local cloud, calling the Codat emulator). No answer is
a 5xx, and every answer is one the document describes: status code, content type, headers, schema.

Every other generated request names a real READY company with bills (and its bill, supplier and
payment), so the answers are not only 400s and 404s. Examples are bounded and derandomized: the
same requests on every run. The document does not claim to be exhaustive about which valid-looking
input is accepted (a payment larger than the amount due is a 400 no schema can express), so
`positive_data_acceptance` is not checked; `ignored_auth` neither: the local API does not verify
SigV4 (docs/local-cloud.md), API Gateway does (tests/infra).
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from localcloud.payments import Smb, ready_smb
from localcloud.product import ProductCloud, running_product

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def _import_all_of_schemathesis() -> None:
    """Import every schemathesis module now, at collection, while this process runs one thread.

    schemathesis is a pytest plugin, so pytest rewrites its modules' asserts as they are imported
    (`ast.parse`), and it imports many of them lazily, on first use. Under Python 3.11, two threads
    building ASTs at once corrupt the interpreter's AST recursion counter (SystemError: "AST
    constructor recursion depth mismatch"), and during this test the local cloud's threads run
    handlers. Done here, no rewrite happens once they run.
    """
    for module in pkgutil.walk_packages(schemathesis.__path__, "schemathesis."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # optional extras not installed (allure reporting)
            continue


_import_all_of_schemathesis()
# Per operation and generation mode: 17 operations x 2 modes x EXAMPLES requests.
EXAMPLES = 4
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Offboarding (and relinking) a company changes what the other routes answer: they run last.
LAST = ("POST /companies/{companyId}/relink", "DELETE /companies/{companyId}")


@pytest.fixture(scope="module")
def product(product_cdk_out: Path) -> Iterator[ProductCloud]:
    with running_product(product_cdk_out) as running:
        yield running


@pytest.fixture(scope="module")
def smb(product: ProductCloud) -> Smb:
    smb = ready_smb(product, [Decimal("100.00"), Decimal("250.00")])
    paid = smb.pay(smb.bills[0], "pay-contract-1", "10.00")
    assert paid.status_code == 202, paid.text
    return smb


def _real_ids(smb: Smb) -> dict[str, str]:
    with smb.http() as http:
        bill = http.get(f"/companies/{smb.company_id}/bills/{smb.bills[0]}").json()
    return {
        "companyId": smb.company_id,
        "billId": smb.bills[0],
        "supplierId": bill["supplierId"],
        "paymentId": "pay-contract-1",
    }


def _ordered(schema: schemathesis.schemas.BaseSchema) -> list:
    operations = [result.ok() for result in schema.get_all_operations()]
    return sorted(
        operations,
        key=lambda op: (op.label in LAST, LAST.index(op.label) if op.label in LAST else 0),
    )


def test_every_answer_matches_the_document_and_none_is_a_server_error(product, smb):
    schema = schemathesis.openapi.from_path(DOCUMENT, config=SchemathesisConfig())
    real = _real_ids(smb)
    base_url = product.cloud.api_url
    failures: list[str] = []
    answers: dict[str, Counter[int]] = {}
    sent: Counter[str] = Counter()
    started = time.monotonic()
    for operation in _ordered(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],  # no shrinking: the case is reported
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                # Every other request (the first included) names the real company and records.
                sent[case.operation.label] += 1
                if sent[case.operation.label] % 2 == 1 and case.path_parameters:
                    case.path_parameters = {
                        name: real.get(name, value) for name, value in case.path_parameters.items()
                    }
                response = case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=60)
                answers.setdefault(case.operation.label, Counter())[response.status_code] += 1

            try:
                run()
            # Every operation runs; all failures are reported (schemathesis groups its own).
            except (Exception, BaseExceptionGroup) as failure:
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
    print(f"{sum(sum(c.values()) for c in answers.values())} requests in {elapsed:.1f} s")
    for label, statuses in answers.items():
        print(f"  {label}: {dict(sorted(statuses.items()))}")
    assert len(answers) == 17, "every operation got requests"
    # Not only refusals: the reads of the real company (routes with nothing but path parameters,
    # so a request with its ids must succeed) were answered as documented.
    succeeded = {
        label for label, statuses in answers.items() if any(200 <= s < 300 for s in statuses)
    }
    assert {
        "GET /companies/{companyId}",
        "GET /companies/{companyId}/bills/{billId}",
        "GET /companies/{companyId}/payment-accounts",
        "GET /companies/{companyId}/bills/{billId}/payments/{paymentId}",
    } <= succeeded, answers
