"""What the product backend sends to start onboarding, and what each onboarding step takes.

Input rules (docs/onboarding.md states them for users):
- `companyId`: the product's own id, `COMPANY_ID_PATTERN`;
- `name`: 1-200 characters, sent to Codat as `codat_company_name(name)` (see its rule); a name
  with no character Codat accepts is refused;
- `platformKey`: one of `PLATFORMS`;
- `redirectUrl` (optional): an absolute http(s) URL, kept with the company and in LinkReady;
- `tags` (optional): at most 10 string pairs, set on the Codat company beside the reserved
  `billpayCompanyId` tag.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from billpay.companies.models import PRODUCT_COMPANY_ID_TAG, CompanyId, WaitKind

# Codat's platform keys for the accounting platforms Bill Pay supports.
PLATFORMS: dict[str, str] = {
    "gbol": "Xero",
    "qhyg": "QuickBooks Online",
    "akxx": "NetSuite",
    "knfz": "Sage Intacct",
    "fbrh": "FreeAgent",
    "rwuv": "Zoho Books",
}

# Codat refuses company names outside this pattern (Codat-Sync-Payables spec, CompanyRequestBody).
CODAT_COMPANY_NAME_PATTERN = r"^[A-Za-z0-9\s\-',&@.,?!]+$"
_OUTSIDE_CODAT_NAME = re.compile(r"[^A-Za-z0-9\s\-',&@.?!]")
# Typographic look-alikes of characters Codat accepts.
_LOOK_ALIKES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u2013": "-", "\u2014": "-"})

# Upper bounds of the waits: the state machine's own timeout is derived from them
# (infra/constructs/onboarding.py), so no wait can outlive its execution.
MAX_LINK_EXPIRY_SECONDS = 30 * 86_400
MAX_INITIAL_READ_SECONDS = 3 * 86_400
MAX_RECONCILE_INTERVAL_SECONDS = 86_400

NAME_MAX_LENGTH = 200
MAX_TAGS = 10
TAG_KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
TAG_VALUE_MAX_LENGTH = 256
REDIRECT_URL_MAX_LENGTH = 2000


def codat_company_name(name: str) -> str:
    """The name Codat is given for the product's `name`, by this rule:

    1. letters lose their accents (Unicode NFKD, combining marks dropped: "Müller" -> "Muller");
    2. curly quotes and dashes become ' and -;
    3. every other character Codat's pattern refuses becomes a space ("Acme (UK)" -> "Acme UK");
    4. runs of white space become one space, and the ends are trimmed.
    The result is empty when nothing in the name is acceptable; such a name is refused.
    """
    decomposed = unicodedata.normalize("NFKD", name.translate(_LOOK_ALIKES))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_OUTSIDE_CODAT_NAME.sub(" ", plain).split())


def _codat_can_name(name: str) -> str:
    if not codat_company_name(name):
        raise ValueError(
            "the name has no character Codat accepts in a company name (letters A-Z, digits, "
            "spaces and - ' , & @ . ? !, accents removed)"
        )
    return name


def _known_platform(key: str) -> str:
    if key not in PLATFORMS:
        known = ", ".join(f"{k} ({v})" for k, v in PLATFORMS.items())
        raise ValueError(f"unknown platform key {key!r}: expected one of {known}")
    return key


def _absolute_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("redirectUrl must be an absolute http or https URL")
    return url


CompanyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH),
    AfterValidator(_codat_can_name),
]
PlatformKey = Annotated[
    str, AfterValidator(_known_platform), Field(json_schema_extra={"enum": sorted(PLATFORMS)})
]
RedirectUrl = Annotated[
    str, StringConstraints(max_length=REDIRECT_URL_MAX_LENGTH), AfterValidator(_absolute_http_url)
]
TagKey = Annotated[str, StringConstraints(pattern=TAG_KEY_PATTERN)]
TagValue = Annotated[str, StringConstraints(max_length=TAG_VALUE_MAX_LENGTH)]


class StartOnboarding(BaseModel):
    """Body of POST /companies; also what an onboarding execution is started with."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    company_id: CompanyId = Field(alias="companyId")
    name: CompanyName
    platform_key: PlatformKey = Field(alias="platformKey")
    redirect_url: RedirectUrl | None = Field(default=None, alias="redirectUrl")
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=MAX_TAGS)

    @field_validator("tags")
    @classmethod
    def _no_reserved_tag(cls, tags: dict[str, str]) -> dict[str, str]:
        if PRODUCT_COMPANY_ID_TAG in tags:
            raise ValueError(f"the tag {PRODUCT_COMPANY_ID_TAG!r} is reserved: it holds companyId")
        return tags

    def execution_input(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class OnboardingStarted(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    company_id: str = Field(serialization_alias="companyId")
    execution_arn: str = Field(serialization_alias="executionArn")
    # Where the product reads the company's state (GET).
    status_path: str = Field(serialization_alias="statusPath")


# --- the state machine's steps ------------------------------------------------------------------


class OnboardingTimings(BaseModel):
    """How long the waits last. Defaults come from the stage (infra/config.py); a StartExecution
    input may override any of them with `timings` (e.g. a longer Link expiry for one SMB)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Without a webhook for this long, read the connection (or the data) once, then keep waiting.
    reconcile_interval_seconds: int = Field(
        alias="reconcileIntervalSeconds", ge=1, le=MAX_RECONCILE_INTERVAL_SECONDS
    )
    # A Link URL nobody used for this long: LINK_EXPIRED.
    link_expiry_seconds: int = Field(alias="linkExpirySeconds", ge=1, le=MAX_LINK_EXPIRY_SECONDS)
    # An authorized connection whose initial read has not completed after this long: FAILED.
    initial_read_timeout_seconds: int = Field(
        alias="initialReadTimeoutSeconds", ge=1, le=MAX_INITIAL_READ_SECONDS
    )

    def overridden(self, override: TimingsOverride | None) -> OnboardingTimings:
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_none=True))

    def as_input(self) -> dict[str, int]:
        return self.model_dump(by_alias=True)


class TimingsOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    reconcile_interval_seconds: int | None = Field(
        default=None, alias="reconcileIntervalSeconds", ge=1, le=MAX_RECONCILE_INTERVAL_SECONDS
    )
    link_expiry_seconds: int | None = Field(
        default=None, alias="linkExpirySeconds", ge=1, le=MAX_LINK_EXPIRY_SECONDS
    )
    initial_read_timeout_seconds: int | None = Field(
        default=None, alias="initialReadTimeoutSeconds", ge=1, le=MAX_INITIAL_READ_SECONDS
    )


class OnboardingInput(StartOnboarding):
    """What StartExecution may carry beyond the API's body: `timings` overrides."""

    timings: TimingsOverride | None = None


class RelinkInput(BaseModel):
    """What POST /companies/{id}/relink starts an execution with: the company is registered."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    company_id: CompanyId = Field(alias="companyId")
    relink: Literal[True]
    timings: TimingsOverride | None = None


class RegisterCompany(BaseModel):
    """Input of the RegisterCompany step: the execution's input as given, and its ARN."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    execution_arn: str = Field(alias="executionArn", min_length=1)
    # Validated by the step as OnboardingInput, or RelinkInput when it says `relink`.
    input: dict[str, Any]


class CompanyStep(BaseModel):
    """Input of a step that works on one company within one execution."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    company_id: CompanyId = Field(alias="companyId")
    execution_arn: str = Field(alias="executionArn", min_length=1)


class ArmWait(BaseModel):
    """Input of a `.waitForTaskToken` step: park the token on the company."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    company_id: CompanyId = Field(alias="companyId")
    kind: WaitKind
    token: str = Field(min_length=1)


class Reconcile(BaseModel):
    """Input of a reconcile step, run when a wait got no webhook within the interval."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    company_id: CompanyId = Field(alias="companyId")
    kind: WaitKind
    execution_arn: str = Field(alias="executionArn", min_length=1)
    timings: OnboardingTimings
    # For the initial read: when the authorization happened (the read's clock starts then).
    authorized_at: str | None = Field(default=None, alias="authorizedAt")


class ApplySignal(BaseModel):
    """Input of a step that records what a resumed wait received (`signal_output` JSON)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    company_id: CompanyId = Field(alias="companyId")
    signal: dict[str, Any]


FailureStatus = Literal["FAILED", "LINK_FAILED", "LINK_EXPIRED"]


class RecordFailure(BaseModel):
    """Input of the RecordFailure step: a task's error (Catch) or a reason the workflow decided."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    company_id: CompanyId = Field(alias="companyId")
    execution_arn: str = Field(alias="executionArn", min_length=1)
    status: FailureStatus
    # Step Functions' Catch output: {"Error": name, "Cause": the Lambda error payload as JSON}.
    error: dict[str, Any] | None = None
    # Or the `detail` of what a wait or reconcile answered; its `reason` says why.
    detail: dict[str, Any] | None = None


class MarkReady(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    company_id: CompanyId = Field(alias="companyId")
    execution_arn: str = Field(alias="executionArn", min_length=1)
    company_data: dict[str, Any] = Field(default_factory=dict, alias="companyData")
