"""Static HubSpot facts the sandbox starts from: object types, default properties, association types,
the default deal pipeline and the rate budgets of each subscription tier.

Kept as plain data so a reader can compare it line by line with HubSpot's documentation."""

from __future__ import annotations

from dataclasses import dataclass

# canonical plural name -> HubSpot object type id
OBJECT_TYPE_IDS: dict[str, str] = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "products": "0-7",
    "line_items": "0-8",
    "orders": "0-123",
    "carts": "0-142",
}
SINGULAR: dict[str, str] = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "products": "product",
    "line_items": "line_item",
    "orders": "order",
    "carts": "cart",
}
# every spelling HubSpot accepts in a path -> canonical plural name
_ALIASES: dict[str, str] = {}
for _plural, _type_id in OBJECT_TYPE_IDS.items():
    for _alias in (_plural, SINGULAR[_plural], _type_id, _plural.replace("_", ""), SINGULAR[_plural].replace("_", "")):
        _ALIASES[_alias] = _plural


def canonical_type(name: str) -> str | None:
    """The canonical plural object type for any accepted spelling, or None."""
    return _ALIASES.get(name.lower())


# properties HubSpot returns when a read names none
DEFAULT_READ_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email"),
    "companies": ("name", "domain"),
    "deals": ("dealname", "amount", "closedate", "pipeline", "dealstage"),
    "products": ("name", "description", "price"),
    "line_items": ("name", "quantity", "price", "hs_product_id", "amount"),
    "orders": ("hs_order_name", "hs_total_price", "hs_currency_code"),
    "carts": ("hs_cart_name", "hs_total_price", "hs_currency_code"),
}
# properties searched by the free-text `query` of a search request
QUERY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email", "phone", "company"),
    "companies": ("name", "domain", "website", "phone"),
    "deals": ("dealname",),
    "products": ("name", "hs_sku", "description"),
    "line_items": ("name",),
    "orders": ("hs_order_name", "hs_external_order_id"),
    "carts": ("hs_cart_name", "hs_external_cart_id"),
}
MODIFIED_PROPERTY: dict[str, str] = {t: "hs_lastmodifieddate" for t in OBJECT_TYPE_IDS} | {
    "contacts": "lastmodifieddate"
}
GROUP_NAMES: dict[str, str] = {
    "contacts": "contactinformation",
    "companies": "companyinformation",
    "deals": "dealinformation",
    "products": "productinformation",
    "line_items": "lineiteminformation",
    "orders": "orderinformation",
    "carts": "cartinformation",
}

# (name, type, fieldType, options) — type "string" unless said otherwise
PropSpec = tuple[str, str, str, tuple[str, ...]]
_S, _N, _DT, _D, _E, _B = "string", "number", "datetime", "date", "enumeration", "bool"


def _p(name: str, kind: str = _S, options: tuple[str, ...] = ()) -> PropSpec:
    field = {"string": "text", "number": "number", "datetime": "date", "date": "date", "enumeration": "select", "bool": "booleancheckbox"}[kind]
    return (name, kind, field, options)


_ADDRESS = tuple(_p(n) for n in ("phone", "address", "city", "zip", "state", "country", "website"))
LIFECYCLE_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer", "evangelist", "other")
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "CAD", "AUD", "JPY")

DEFAULT_PROPERTIES: dict[str, tuple[PropSpec, ...]] = {
    "contacts": (
        _p("email"), _p("firstname"), _p("lastname"), *_ADDRESS, _p("mobilephone"), _p("fax"), _p("company"),
        _p("jobtitle"), _p("lifecyclestage", _E, LIFECYCLE_STAGES), _p("hs_language"), _p("salutation"),
        _p("hubspot_owner_id"), _p("notes_last_updated", _DT),
    ),
    "companies": (
        _p("name"), _p("domain"), *_ADDRESS, _p("address2"), _p("industry"), _p("description"),
        _p("numberofemployees", _N), _p("annualrevenue", _N), _p("lifecyclestage", _E, LIFECYCLE_STAGES),
        _p("hubspot_owner_id"),
    ),
    "deals": (
        _p("dealname"), _p("amount", _N), _p("closedate", _DT), _p("pipeline"), _p("dealstage"),
        _p("deal_currency_code", _E, CURRENCIES), _p("dealtype", _E, ("newbusiness", "existingbusiness")),
        _p("description"), _p("hubspot_owner_id"), _p("hs_priority", _E, ("low", "medium", "high")),
    ),
    "products": (
        _p("name"), _p("price", _N), _p("hs_sku"), _p("description"), _p("hs_cost_of_goods_sold", _N),
        _p("hs_url"), _p("hs_images"), _p("hs_product_type", _E, ("inventory", "non_inventory", "service")),
        _p("hs_recurring_billing_period"), _p("tax", _N),
    ),
    "line_items": (
        _p("name"), _p("quantity", _N), _p("price", _N), _p("hs_product_id"), _p("amount", _N), _p("hs_sku"),
        _p("description"), _p("discount", _N), _p("hs_discount_percentage", _N), _p("hs_line_item_currency_code", _E, CURRENCIES),
        _p("hs_cost_of_goods_sold", _N), _p("tax", _N),
    ),
    # HubSpot's default order and cart properties (orders and carts guides, docs/commerce-objects.md)
    "orders": (
        _p("hs_order_name"), _p("hs_currency_code", _E, CURRENCIES), _p("hs_total_price", _N),
        _p("hs_subtotal_price", _N), _p("hs_order_discount", _N), _p("hs_tax", _N), _p("hs_shipping_cost", _N),
        _p("hs_external_order_id"), _p("hs_source_store"), _p("hs_pipeline"), _p("hs_pipeline_stage"),
        _p("hs_fulfillment_status"), _p("hs_payment_status"), _p("hs_order_note"), _p("hs_shipping_tracking_number"),
        *(_p(f"hs_{kind}_address_{part}") for kind in ("billing", "shipping")
          for part in ("name", "email", "phone", "street", "city", "state", "postal_code", "country")),
        _p("hs_external_created_date", _DT),
    ),
    "carts": (
        _p("hs_cart_name"), _p("hs_currency_code", _E, CURRENCIES), _p("hs_total_price", _N),
        _p("hs_subtotal_price", _N), _p("hs_external_cart_id"), _p("hs_source_store"), _p("hs_cart_url"),
        _p("hs_checkout_url"), _p("hs_cart_discount", _N), _p("hs_tax", _N), _p("hs_shipping_cost", _N),
        _p("hs_tags"), _p("hs_external_status"), _p("hs_external_created_date", _DT),
        _p("hs_external_modified_date", _DT),
    ),
}
# system properties every type has; never writable through the API
SYSTEM_PROPERTIES: tuple[PropSpec, ...] = (
    _p("hs_object_id", _N), _p("createdate", _DT), _p("hs_createdate", _DT), _p("lastmodifieddate", _DT),
    _p("hs_lastmodifieddate", _DT),
)
READ_ONLY = frozenset({"hs_object_id", "hs_createdate", "lastmodifieddate", "hs_lastmodifieddate"})
# contacts' email is unique out of the box (matched without regard to case)
BUILTIN_UNIQUE: dict[str, frozenset[str]] = {"contacts": frozenset({"email"})}
MAX_UNIQUE_PROPERTIES = 10


@dataclass(frozen=True)
class AssociationType:
    type_id: int
    from_type: str
    to_type: str
    label: str | None  # None for the default (unlabeled) type
    inverse: int
    default: bool


def _pair(from_type: str, to_type: str, forward: int, backward: int, label: str | None = None, default: bool = True) -> list[AssociationType]:
    return [
        AssociationType(forward, from_type, to_type, label, backward, default),
        AssociationType(backward, to_type, from_type, label, forward, default),
    ]


ASSOCIATION_TYPES: dict[int, AssociationType] = {
    a.type_id: a
    for a in [
        *_pair("contacts", "companies", 279, 280),
        *_pair("contacts", "companies", 1, 2, "Primary", default=False),
        *_pair("deals", "contacts", 3, 4),
        *_pair("deals", "companies", 341, 342),
        *_pair("deals", "companies", 5, 6, "Primary", default=False),
        *_pair("line_items", "deals", 20, 19),
        *_pair("orders", "contacts", 507, 508),
        *_pair("orders", "companies", 509, 510),
        *_pair("orders", "deals", 512, 511),
        *_pair("orders", "line_items", 513, 514),
        *_pair("carts", "contacts", 586, 587),
        *_pair("carts", "line_items", 590, 591),
        *_pair("carts", "orders", 592, 593),
    ]
}
DEFAULT_ASSOCIATION: dict[tuple[str, str], int] = {
    (a.from_type, a.to_type): a.type_id for a in ASSOCIATION_TYPES.values() if a.default
}

# HubSpot's standard sales pipeline: (stage id, label, probability, closed?)
DEFAULT_DEAL_STAGES: tuple[tuple[str, str, str, bool], ...] = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
)

# Every account has a default order pipeline. Its stage ids are not in the HubSpot pages we read, so these are
# the sandbox's own (the sync never relies on them: it creates and uses its own order pipeline).
DEFAULT_ORDER_STAGES: tuple[tuple[str, str], ...] = (
    ("open", "Open"), ("processed", "Processed"), ("shipped", "Shipped"), ("delivered", "Delivered"),
    ("canceled", "Canceled"),
)
# Per object type with pipelines: (pipeline property, stage property) of its records.
PIPELINE_PROPERTIES: dict[str, tuple[str, str]] = {
    "deals": ("pipeline", "dealstage"),
    "orders": ("hs_pipeline", "hs_pipeline_stage"),
}


@dataclass(frozen=True)
class TierBudget:
    per_ten_seconds: int
    per_day: int
    max_deal_pipelines: int  # also the order pipeline limit: a second pipeline needs Starter or above


TIERS: dict[str, TierBudget] = {
    "free": TierBudget(100, 250_000, 1),
    "starter": TierBudget(100, 250_000, 2),
    "professional": TierBudget(190, 625_000, 15),
    "enterprise": TierBudget(190, 1_000_000, 100),
}
OAUTH_PER_TEN_SECONDS = 110
SEARCH_PER_SECOND = 5
PORTAL_ID = 24681357

# HubSpot's published OAuth scopes (the part of the catalogue a CRM integration meets). Notably absent:
# crm.schemas.products.* and crm.schemas.line_items.write — product and line-item properties need e-commerce.
SCOPES: frozenset[str] = frozenset({
    "oauth", "e-commerce", "crm.import", "crm.export", "crm.lists.read", "crm.lists.write", "tickets", "forms",
    "content", "automation", "timeline", "files", "crm.objects.owners.read", "crm.objects.users.read",
    "crm.objects.users.write", "settings.users.read", "settings.users.write", "settings.currencies.read",
    "settings.currencies.write", "account-info.security.read",
    *(f"crm.objects.{t}.{a}" for t in ("contacts", "companies", "deals", "line_items", "products", "quotes", "orders",
                                       "carts", "custom", "marketing_events", "invoices", "subscriptions")
      for a in ("read", "write")),
    *(f"crm.schemas.{t}.read" for t in ("contacts", "companies", "deals", "custom", "quotes", "line_items", "orders",
                                        "carts", "invoices")),
    *(f"crm.schemas.{t}.write" for t in ("contacts", "companies", "deals", "custom", "orders", "carts")),
})
# Object types whose object and property endpoints also accept the e-commerce scope (products and line items
# are HubSpot's commerce objects; their properties are written with e-commerce only).
ECOMMERCE_TYPES = frozenset({"products", "line_items"})

# The sandbox account (account-info API): its time zone sets when the daily limit resets.
ACCOUNT_TIME_ZONE = "Europe/Berlin"
COMPANY_CURRENCY = "EUR"
ADDITIONAL_CURRENCIES = ("USD", "GBP")
# Date versions HubSpot has published; a path with any other answers 404.
PUBLISHED_VERSIONS = ("2025-09", "2026-03", "2026-09")
