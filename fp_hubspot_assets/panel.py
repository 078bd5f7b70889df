"""The integration panel: every option of the FocusPoint HubSpot panel as one validated settings model.

Loaded from YAML (``panel.example.yaml`` documents every field); secrets never live in the file, only the
*names* of the environment variables that hold them. Any invalid value fails at load time with a message
naming the field (``PanelError``).
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
import yaml.resolver
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fp_hubspot_assets.source_model import ORDER_STATUSES, PAYMENT_STATUSES, SHIPMENT_STATUSES, SYSTEM_ROLES

PANEL_FILE_ENV = "FP_PANEL_FILE"


class PanelError(ValueError):
    """A panel file that cannot be used; the message names every offending field."""


class Tier(StrEnum):
    free = "free"
    starter = "starter"
    professional = "professional"
    enterprise = "enterprise"

    @property
    def sends_products(self) -> bool:
        """The seed: products (and so line items) reach HubSpot only on Professional or Enterprise."""
        return self in (Tier.professional, Tier.enterprise)


class DealStage(StrEnum):
    """The six e-commerce deal stages, in pipeline order."""

    checkout_pending = "checkout_pending"
    checkout_completed = "checkout_completed"
    checkout_processed = "checkout_processed"
    checkout_shipped = "checkout_shipped"
    checkout_canceled = "checkout_canceled"
    checkout_abandoned = "checkout_abandoned"

    @property
    def label(self) -> str:
        return STAGE_LABELS[self]


STAGE_LABELS: dict[DealStage, str] = {
    DealStage.checkout_pending: "Checkout Pending",
    DealStage.checkout_completed: "Checkout Completed",
    DealStage.checkout_processed: "Checkout Processed",
    DealStage.checkout_shipped: "Checkout Shipped",
    DealStage.checkout_canceled: "Checkout Canceled",
    DealStage.checkout_abandoned: "Checkout Abandoned",
}

STATUS_VALUES: dict[str, tuple[str, ...]] = {
    "order_status": ORDER_STATUSES,
    "shipment_status": SHIPMENT_STATUSES,
    "payment_status": PAYMENT_STATUSES,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class StageRule(_Strict):
    """Which order field selects a stage, and the values of that field that select it."""

    field: Literal["order_status", "shipment_status", "payment_status"]
    values: Annotated[list[str], Field(min_length=1)]

    @model_validator(mode="after")
    def _values_known(self) -> StageRule:
        allowed = STATUS_VALUES[self.field]
        unknown = [v for v in self.values if v not in allowed]
        if unknown:
            raise ValueError(f"unknown {self.field} value(s) {unknown}; allowed: {list(allowed)}")
        return self


class DealStageMapping(_Strict):
    """Order → stage rules. When several rules match, the first stage in ``precedence`` wins; an order that
    no rule matches gets ``unmapped_order_stage``. Open carts are Checkout Pending; Abandoned is carts only."""

    checkout_pending: StageRule = StageRule(field="payment_status", values=["unpaid"])
    checkout_completed: StageRule = StageRule(field="order_status", values=["open", "closed"])
    checkout_processed: StageRule = StageRule(field="payment_status", values=["paid"])
    checkout_shipped: StageRule = StageRule(field="shipment_status", values=["shipped"])
    checkout_canceled: StageRule = StageRule(field="order_status", values=["canceled"])
    precedence: list[DealStage] = [
        DealStage.checkout_canceled,
        DealStage.checkout_shipped,
        DealStage.checkout_processed,
        DealStage.checkout_completed,
        DealStage.checkout_pending,
    ]
    unmapped_order_stage: DealStage = DealStage.checkout_completed

    @field_validator("precedence")
    @classmethod
    def _precedence_complete(cls, value: list[DealStage]) -> list[DealStage]:
        mapped = set(DealStage) - {DealStage.checkout_abandoned}
        if set(value) != mapped or len(value) != len(mapped):
            raise ValueError(f"must list each of {sorted(s.value for s in mapped)} exactly once")
        return value

    @field_validator("unmapped_order_stage")
    @classmethod
    def _not_abandoned(cls, value: DealStage) -> DealStage:
        if value is DealStage.checkout_abandoned:
            raise ValueError("checkout_abandoned applies to carts only")
        return value

    def rules(self) -> list[tuple[DealStage, StageRule]]:
        """(stage, rule) in precedence order."""
        return [(stage, getattr(self, stage.value)) for stage in self.precedence]


class Integration(_Strict):
    """How we reach HubSpot. Secrets are named by environment variable, never written here."""

    mode: Literal["public_app", "private_app"] = "private_app"
    region: Literal["na1", "eu1"] = "na1"
    base_url: str | None = None  # overrides the region's API host (e.g. a local sandbox)
    # HubSpot API version: a published date version (2025-09, 2026-03, 2026-09) or "legacy" (the numbered
    # /crm/v3 and /crm/v4 paths, retired by HubSpot in 2027).
    api_version: Literal["2025-09", "2026-03", "2026-09", "legacy"] = "2026-03"
    # private_app: a legacy private-app token or a Service Key, read from this variable
    access_token_env: str = "FP_HUBSPOT_ACCESS_TOKEN"
    # public_app (OAuth "Authorize" flow)
    client_id: Annotated[str | None, Field(validate_default=True)] = None
    client_secret_env: str = "FP_HUBSPOT_CLIENT_SECRET"
    redirect_uri: str = "http://127.0.0.1:8976/oauth-callback"
    scopes: list[str] = [
        "oauth",
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.objects.companies.read",
        "crm.objects.companies.write",
        "crm.objects.deals.read",
        "crm.objects.deals.write",
        "crm.objects.line_items.read",
        "crm.objects.line_items.write",
        "crm.schemas.contacts.read",
        "crm.schemas.contacts.write",
        "crm.schemas.companies.read",
        "crm.schemas.companies.write",
        "crm.schemas.deals.read",
        "crm.schemas.deals.write",
        "e-commerce",
    ]

    @field_validator("base_url", "redirect_uri")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @field_validator("access_token_env", "client_secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not value.replace("_", "").isalnum() or value[0].isdigit():
            raise ValueError("must be the NAME of an environment variable (the secret itself never goes here)")
        return value

    @field_validator("client_id")
    @classmethod
    def _client_id_for_public_app(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("mode") == "public_app" and not value:
            raise ValueError("required when mode is public_app (the OAuth app's client id)")
        return value

    @property
    def api_base_url(self) -> str:
        if self.base_url:
            return self.base_url
        return "https://api-eu1.hubapi.com" if self.region == "eu1" else "https://api.hubapi.com"

    @property
    def authorize_base_url(self) -> str:
        if self.base_url:
            return self.base_url
        return "https://app-eu1.hubspot.com" if self.region == "eu1" else "https://app.hubspot.com"


class CustomerRoles(_Strict):
    """Only customers holding one of ``roles`` are sent; ``all_registered`` sends every registered one.
    Guests are sent only when ``Guest`` is selected. ``client_roles`` declares the client's own roles."""

    client_roles: list[str] = []  # declared first: roles are validated against it
    roles: list[str] = ["Registered"]
    all_registered: bool = False

    @field_validator("roles")
    @classmethod
    def _roles_known(cls, value: list[str], info: ValidationInfo) -> list[str]:
        known = set(SYSTEM_ROLES) | set(info.data.get("client_roles") or [])
        unknown = [r for r in value if r not in known]
        if unknown:
            raise ValueError(
                f"unknown role(s) {unknown}; system roles are {list(SYSTEM_ROLES)}, "
                "declare the client's own roles in customers.client_roles"
            )
        return value

    @model_validator(mode="after")
    def _something_selected(self) -> CustomerRoles:
        if not self.roles and not self.all_registered:
            raise ValueError("select at least one role in roles, or set all_registered: true")
        return self


class ItemOptions(_Strict):
    sync_sku: bool = True
    store_prefix: bool = False
    sync_combinations: bool = True


class FirstSetup(_Strict):
    """Only honoured before anything has been synced, unless ``force`` (the integration panel's "manual attempt")."""

    pull_contacts: bool = False
    pull_companies: bool = False
    ignore_existing_deals: bool = False
    force: bool = False


class DealOptions(_Strict):
    # A deal follows its customer: the orders and carts of customers the role filter excludes (guests by
    # default) are skipped unless this says ``send`` (then they are deals without a contact).
    of_excluded_customers: Literal["skip", "send"] = "skip"


class CommerceOptions(_Strict):
    # Where orders and carts go in HubSpot: deals (a cart and its order are one deal, the default), HubSpot's
    # native order and cart objects, or both (each deal associated with its order). docs/panel-options.md
    objects: Literal["deals", "orders_and_carts", "both"] = "deals"

    @property
    def sends_deals(self) -> bool:
        return self.objects != "orders_and_carts"

    @property
    def sends_orders(self) -> bool:
        return self.objects != "deals"


class PanelSettings(_Strict):
    tier: Tier = Tier.professional
    integration: Integration = Integration()
    customers: CustomerRoles = CustomerRoles()
    items: ItemOptions = ItemOptions()
    abandoned_cart_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24.0
    address_source: Literal["billing", "shipping"] = "billing"
    first_setup: FirstSetup = FirstSetup()
    deal_stages: DealStageMapping = DealStageMapping()
    deals: DealOptions = DealOptions()
    commerce: CommerceOptions = CommerceOptions()
    # What becomes of a HubSpot record whose customer, item, order or cart vanished from the source
    # (docs/identity.md): ``flag`` sets fp_deleted_in_source, ``archive`` archives it, ``keep`` leaves it.
    deletes: Literal["keep", "flag", "archive"] = "flag"
    # A run that would flag or archive more than this share of one object type's synced records stops
    # instead: a failed or empty read must never look like a mass deletion.
    deletes_max_share: Annotated[float, Field(ge=0, le=1)] = 0.05


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


_STRICT_HINTS = {
    "bool_type": "must be true or false (unquoted)",
    "string_type": "must be text (quote it)",
    "float_type": "must be a number (unquoted)",
    "int_type": "must be a whole number (unquoted)",
    "list_type": "must be a list",
    "model_type": "must be a mapping of options",
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (plain YAML keeps the last silently)."""


def _no_duplicate_keys(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise PanelError(
                f"line {key_node.start_mark.line + 1}: option '{key}' is written twice "
                f"(first on line {seen[key] + 1}); keep one"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def parse_panel(data: dict[str, Any] | None, source: str = "panel") -> PanelSettings:
    """Validate a panel mapping; every error names its field."""
    if data is not None and not isinstance(data, dict):
        raise PanelError(f"{source}: the panel must be a mapping of options, got {type(data).__name__}")
    try:
        # strict, through JSON: no coercion ("yes" is not true, 1 is not "1"), while enum names stay text
        return PanelSettings.model_validate_json(json.dumps(data or {}, default=str), strict=True)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown option (check the spelling against panel.example.yaml)"
            elif err["type"] in _STRICT_HINTS:
                msg = f"{_STRICT_HINTS[err['type']]}, got {err['input']!r}"
            lines.append(f"  {_field_path(err['loc'])}: {msg}")
        raise PanelError(f"{source}: invalid panel settings\n" + "\n".join(lines)) from None


def load_panel(path: str | os.PathLike[str] | None = None) -> PanelSettings:
    """Load a panel file; ``None`` means $FP_PANEL_FILE, or the embedded defaults when that is unset."""
    path = path or os.environ.get(PANEL_FILE_ENV)
    if not path:
        return PanelSettings()
    file = Path(path)
    if not file.is_file():
        raise PanelError(f"{file}: panel file not found")
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise PanelError(f"{file}: not valid YAML: {exc}") from None
    except PanelError as exc:
        raise PanelError(f"{file}: {exc}") from None
    if data is None:
        raise PanelError(
            f"{file}: the panel file is empty; write the options you change (see panel.example.yaml), "
            f"or unset {PANEL_FILE_ENV} to use the defaults"
        )
    return parse_panel(data, str(file))
