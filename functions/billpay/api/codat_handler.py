"""The product API's routes that call Codat: DELETE /companies/{companyId} (offboarding unlinks the
connection) and the payables writes (POST and PUT on bills, suppliers and payment accounts, and a
bill's attachments).

API Gateway sends only those routes to this function (infra/constructs/api.py and bills.py). It
serves them with the product API's one resolver (billpay.api.handler), with Codat's client, and is
the only API function that imports Codat's SDK: at the top, so the cost is paid by its cold start,
never by a request, and the other routes never pay it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from billpay.api.handler import ApiDependencies, default_dependencies, serve
from billpay.codat.client import codat_client
from billpay.core.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
def handler(
    event: dict[str, Any], context: LambdaContext, deps: ApiDependencies | None = None
) -> dict[str, Any]:
    return serve(event, context, deps or default_dependencies(codat=codat_client))
