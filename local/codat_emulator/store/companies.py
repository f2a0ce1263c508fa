"""Companies and their connections: the records, and the aggregate that owns them.

A company owns its connections; whatever else hangs off a company (a connection's ledger, the
company's quota, its sync settings) belongs to another aggregate, which learns about companies
and connections coming and going through the ``_on_*`` hooks below (each override calls
``super()``, so every aggregate gets every hook)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from codat_emulator.store.core import (
    JsonDict,
    NotFound,
    StoreCore,
    ValidationFailed,
    ValidationItem,
    iso,
    new_id,
)

CONNECTION_STATUSES: tuple[str, ...] = ("PendingAuth", "Linked", "Unlinked", "Deauthorized")

# Codat's platform keys for the accounting platforms Bill Pay supports.
PLATFORMS: dict[str, str] = {
    "gbol": "Xero",
    "qhyg": "QuickBooks Online",
    "fbrh": "FreeAgent",
    "akxx": "Oracle NetSuite",
    "knfz": "Sage Intacct",
    "rwuv": "Zoho Books",
}
DEAUTHORIZED_MESSAGE = "The integration de-authorized access to the connection."
# Stable per platform, like Codat's integration ids (uuid5 so no id is hard-coded).
_INTEGRATION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "codat-emulator/integrations")


@dataclass
class Company:
    id: str
    name: str
    description: str | None
    redirect: str
    created: datetime
    tags: dict[str, str] = field(default_factory=dict)
    last_sync: datetime | None = None

    def to_json(self, connections: Iterable[Connection] = ()) -> JsonDict:
        body: JsonDict = {
            "id": self.id,
            "name": self.name,
            "redirect": self.redirect,
            "created": iso(self.created),
            "products": ["payables"],
            "tags": dict(self.tags),
            "dataConnections": [c.to_json() for c in connections],
        }
        if self.description is not None:
            body["description"] = self.description
        if self.last_sync is not None:
            body["lastSync"] = iso(self.last_sync)
        return body


@dataclass
class ConnectionError_:
    status_code: str
    status_text: str
    error_message: str
    errored_on: datetime

    def to_json(self) -> JsonDict:
        return {
            "statusCode": self.status_code,
            "statusText": self.status_text,
            "errorMessage": self.error_message,
            "erroredOnUtc": iso(self.errored_on),
            "status": "Active",
        }


@dataclass
class Connection:
    id: str
    company_id: str
    platform_key: str
    link_url: str
    status: str
    created: datetime
    source_id: str
    last_sync: datetime | None = None
    errors: list[ConnectionError_] = field(default_factory=list)

    @property
    def platform_name(self) -> str:
        return PLATFORMS[self.platform_key]

    def to_json(self) -> JsonDict:
        body: JsonDict = {
            "id": self.id,
            "integrationId": str(uuid.uuid5(_INTEGRATION_NAMESPACE, self.platform_key)),
            "integrationKey": self.platform_key,
            "sourceId": self.source_id,
            "sourceType": "Accounting",
            "platformName": self.platform_name,
            "linkUrl": self.link_url,
            "status": self.status,
            "created": iso(self.created),
            "dataConnectionErrors": [e.to_json() for e in self.errors],
        }
        if self.last_sync is not None:
            body["lastSync"] = iso(self.last_sync)
        return body


class CompaniesStore(StoreCore):
    """Companies, their connections and which companies count as linked (for the quota)."""

    def _init_companies(self) -> None:
        self._companies: dict[str, Company] = {}
        self._connections: dict[str, dict[str, Connection]] = {}
        self._linked_companies: set[str] = set()

    # -- hooks for the aggregates that hang off companies and connections (called under the lock)

    def _on_connection_created(self, company_id: str, connection_id: str) -> None:
        """A new connection."""

    def _on_connection_linked(self, company_id: str, connection_id: str) -> None:
        """A connection became Linked."""

    def _on_connection_deleted(self, company_id: str, connection_id: str) -> None:
        """A connection is gone (on its own, or with its company)."""

    def _on_company_deleted(self, company_id: str) -> None:
        """A company is gone (its connections' ``_on_connection_deleted`` came first)."""

    # -- companies ------------------------------------------------------------------------------

    def create_company(
        self,
        name: str,
        base_url: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> JsonDict:
        company_id = new_id()
        company = Company(
            id=company_id,
            name=name,
            description=description,
            redirect=f"{base_url.rstrip('/')}/link/{company_id}",
            created=self.clock(),
            tags=dict(tags or {}),
        )
        with self._change() as emit:
            self._companies[company_id] = company
            self._connections[company_id] = {}
            body = company.to_json()
            emit("company.created", company_id, {"company": body})
        return body

    def _company(self, company_id: str) -> Company:
        company = self._companies.get(company_id)
        if company is None:
            raise NotFound("Company", company_id)
        return company

    def has_company(self, company_id: str) -> bool:
        return company_id in self._companies

    def get_company(self, company_id: str) -> JsonDict:
        with self._lock:
            company = self._company(company_id)
            return company.to_json(self._connections[company_id].values())

    def list_companies(self) -> list[JsonDict]:
        with self._lock:
            return [c.to_json(self._connections[c.id].values()) for c in self._companies.values()]

    def replace_company(
        self, company_id: str, name: str, description: str | None, tags: dict[str, str] | None
    ) -> JsonDict:
        with self._change():
            company = self._company(company_id)
            company.name = name
            company.description = description
            company.tags = dict(tags or {})
            return company.to_json(self._connections[company_id].values())

    def update_company(
        self,
        company_id: str,
        name: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> JsonDict:
        with self._change():
            company = self._company(company_id)
            if name is not None:
                company.name = name
            if description is not None:
                company.description = description
            if tags is not None:
                company.tags = dict(tags)
            return company.to_json(self._connections[company_id].values())

    def delete_company(self, company_id: str) -> None:
        with self._change() as emit:
            company = self._company(company_id)
            body = company.to_json(self._connections[company_id].values())
            for connection_id in self._connections.pop(company_id):
                self._on_connection_deleted(company_id, connection_id)
            del self._companies[company_id]
            self._linked_companies.discard(company_id)
            self._on_company_deleted(company_id)
            emit("company.deleted", company_id, {"company": body})

    # -- connections ----------------------------------------------------------------------------

    def create_connection(self, company_id: str, platform_key: str, base_url: str) -> JsonDict:
        if platform_key not in PLATFORMS:
            # Codat documents no 400 here: an unknown integration is a 404.
            known = ", ".join(f"{k} ({v})" for k, v in PLATFORMS.items())
            raise NotFound(f"Integration (supported: {known})", platform_key)
        with self._change() as emit:
            self._company(company_id)
            connection_id = new_id()
            connection = Connection(
                id=connection_id,
                company_id=company_id,
                platform_key=platform_key,
                link_url=f"{base_url.rstrip('/')}/link/{company_id}/connections/{connection_id}",
                status="PendingAuth",
                created=self.clock(),
                source_id=str(uuid.uuid5(_INTEGRATION_NAMESPACE, platform_key + "/source")),
            )
            self._connections[company_id][connection_id] = connection
            self._on_connection_created(company_id, connection_id)
            body = connection.to_json()
            emit("connection.created", company_id, {"connection": body})
        return body

    def _connection(self, company_id: str, connection_id: str) -> Connection:
        self._company(company_id)
        connection = self._connections[company_id].get(connection_id)
        if connection is None:
            raise NotFound("Connection", connection_id)
        return connection

    def get_connection(self, company_id: str, connection_id: str) -> JsonDict:
        with self._lock:
            return self._connection(company_id, connection_id).to_json()

    def list_connections(self, company_id: str) -> list[JsonDict]:
        with self._lock:
            self._company(company_id)
            return [c.to_json() for c in self._connections[company_id].values()]

    def set_connection_status(self, company_id: str, connection_id: str, status: str) -> JsonDict:
        """Link (``Linked``), unlink (``Unlinked``), deauthorize (``Deauthorized``) or reset."""
        if status not in CONNECTION_STATUSES:
            raise ValidationFailed(
                [ValidationItem(f"Unknown connection status '{status}'.", item_id="status")]
            )
        with self._change() as emit:
            connection = self._connection(company_id, connection_id)
            previous = connection.status
            connection.status = status
            if status == "Linked":
                self._on_connection_linked(company_id, connection_id)
                connection.last_sync = self.clock()
                self._companies[company_id].last_sync = connection.last_sync
            self._refresh_linked(company_id)
            body = connection.to_json()
            if previous != status:
                emit(
                    "connection.status_changed",
                    company_id,
                    {"connection": body, "previous_status": previous},
                )
        return body

    def fail_connection(
        self,
        company_id: str,
        connection_id: str,
        message: str,
        status_code: str = "400",
        status_text: str = "Bad Request",
    ) -> JsonDict:
        """Record a failed or cancelled authorization (``connection.failed``); the status stays
        as it is, as in Codat's examples (a cancelled Link is still PendingAuth, with a 403)."""
        with self._change() as emit:
            connection = self._connection(company_id, connection_id)
            connection.errors.append(
                ConnectionError_(status_code, status_text, message, self.clock())
            )
            body = connection.to_json()
            emit(
                "connection.status_changed",
                company_id,
                {"connection": body, "previous_status": connection.status, "error": message},
            )
        return body

    def deauthorize_connection(self, company_id: str, connection_id: str) -> JsonDict:
        """The SMB or the platform revoked access: ``Deauthorized`` with the 401 data connection
        error Codat's ``connection.disconnected`` example carries."""
        with self._change():
            connection = self._connection(company_id, connection_id)
            if connection.status != "Deauthorized":
                connection.errors.append(
                    ConnectionError_(
                        "401", DEAUTHORIZED_MESSAGE, DEAUTHORIZED_MESSAGE, self.clock()
                    )
                )
            return self.set_connection_status(company_id, connection_id, "Deauthorized")

    def delete_connection(self, company_id: str, connection_id: str) -> None:
        with self._change() as emit:
            connection = self._connection(company_id, connection_id)
            body = connection.to_json()
            del self._connections[company_id][connection_id]
            self._on_connection_deleted(company_id, connection_id)
            self._refresh_linked(company_id)
            emit("connection.deleted", company_id, {"connection": body})

    def _refresh_linked(self, company_id: str) -> None:
        connections = self._connections.get(company_id, {})
        if any(c.status == "Linked" for c in connections.values()):
            self._linked_companies.add(company_id)
        else:
            self._linked_companies.discard(company_id)
