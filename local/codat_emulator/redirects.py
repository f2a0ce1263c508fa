"""Link redirect templates: what is accepted and how Codat's placeholders are filled."""

from __future__ import annotations

from urllib.parse import quote, urlsplit


class BadRedirect(ValueError):
    pass


def check_redirect_template(template: str) -> str:
    """Only absolute http(s) URLs: a ``javascript:`` or relative redirect is refused."""
    parts = urlsplit(template)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRedirect("the redirect must be an absolute http or https URL")
    return template


def redirect_url(template: str, company_id: str, connection_id: str, status_code: int) -> str:
    """Codat's redirect placeholders: ``{companyId}``, ``{connectionId}``, ``{statusCode}``."""
    check_redirect_template(template)
    return (
        template.replace("{companyId}", quote(company_id, safe=""))
        .replace("{connectionId}", quote(connection_id, safe=""))
        .replace("{statusCode}", str(status_code))
    )
