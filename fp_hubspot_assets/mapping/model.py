"""The mapping contract: what every ``map_*`` function returns and which HubSpot properties it writes.

The sync engine and the HubSpot set-up (custom properties, unique id properties) are driven by these
constants, so a property added to a mapper must be added here first — ``finalize`` rejects columns that
are not declared.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

OBJECT_TYPES = ("contacts", "companies", "products", "deals", "line_items")

# Our unique id property per object type (created with hasUniqueValue; the upsert idProperty).
ID_PROPERTY: dict[str, str] = {
    "contacts": "fp_customer_id",
    "companies": "fp_company_id",
    "products": "fp_product_id",
    "deals": "fp_deal_id",
    "line_items": "fp_line_item_id",
}

# Every property each type writes, id property first. ``fp_*`` are ours; the rest are HubSpot's own.
PROPERTIES: dict[str, list[str]] = {
    "contacts": [
        "fp_customer_id",
        "email",
        "firstname",
        "lastname",
        "phone",
        "address",
        "city",
        "zip",
        "state",
        "country",
        "company",
        "fp_roles",
        "fp_store",
        "fp_source",
    ],
    "companies": [
        "fp_company_id",
        "name",
        "domain",
        "phone",
        "address",
        "address2",
        "city",
        "zip",
        "state",
        "country",
        "fp_group",
        "fp_source",
    ],
    "products": ["fp_product_id", "name", "hs_sku", "price", "description", "fp_store"],
    "deals": [
        "fp_deal_id",
        "dealname",
        "amount",
        "deal_currency_code",
        "closedate",
        "fp_order_status",
        "fp_shipment_status",
        "fp_payment_status",
        "fp_store",
    ],
    "line_items": ["fp_line_item_id", "name", "quantity", "price"],
}

# Columns that are not sent as properties: the sync resolves them (source keys → HubSpot ids / stage ids).
REFERENCES: dict[str, list[str]] = {
    "contacts": ["assoc_companies"],
    "companies": [],
    "products": [],
    "deals": ["dealstage", "assoc_contacts", "assoc_companies"],
    "line_items": ["product_key", "assoc_deals"],
}

# Labels for the custom properties the HubSpot set-up creates (all are single-line text).
CUSTOM_PROPERTY_LABELS: dict[str, str] = {
    "fp_customer_id": "FocusPoint customer id",
    "fp_company_id": "FocusPoint company id",
    "fp_product_id": "FocusPoint product id",
    "fp_deal_id": "FocusPoint deal id",
    "fp_line_item_id": "FocusPoint line item id",
    "fp_roles": "FocusPoint roles",
    "fp_store": "FocusPoint store",
    "fp_source": "FocusPoint source",
    "fp_group": "FocusPoint customer group",
    "fp_order_status": "Order status",
    "fp_shipment_status": "Shipment status",
    "fp_payment_status": "Payment status",
    "fp_deleted_in_source": "Deleted in FocusPoint/SAP on",
}

# Set (a date) by the ``deletes: flag`` policy on a record whose source vanished, cleared when it returns.
# Not part of any payload: the sync writes it on its own, so payload hashes do not depend on it.
DELETED_FLAG = "fp_deleted_in_source"
FLAGGED_TYPES = ("contacts", "companies", "products", "deals")

SKIPPED = "skipped"  # not sent at all: the input cannot become a valid record
REPAIRED = "repaired"  # sent, with a field cleared or fixed
EXCLUDED = "excluded"  # not sent because a panel setting says so

ISSUES_SCHEMA = pl.Schema({"source_key": pl.String, "action": pl.String, "reason": pl.String})
ALIASES_SCHEMA = pl.Schema({"source_key": pl.String, "survivor_key": pl.String})


@dataclass(frozen=True)
class CustomProperty:
    """One property the HubSpot set-up must create before the first upsert."""

    object_type: str
    name: str
    label: str
    unique: bool
    kind: str = "string"


def custom_properties(object_type: str) -> list[CustomProperty]:
    """The ``fp_*`` properties of ``object_type``; the id property is the unique one."""
    props = [
        CustomProperty(object_type, name, CUSTOM_PROPERTY_LABELS[name], name == ID_PROPERTY[object_type])
        for name in PROPERTIES[object_type]
        if name.startswith("fp_")
    ]
    if object_type in FLAGGED_TYPES:
        props.append(CustomProperty(object_type, DELETED_FLAG, CUSTOM_PROPERTY_LABELS[DELETED_FLAG], False, "date"))
    return props


@dataclass(frozen=True)
class Mapped:
    """HubSpot payloads for one object type.

    ``records``: ``source_key`` (unique, non-null), one non-null ``pl.String`` column per property in
    ``PROPERTIES[object_type]`` ("" means empty/clear), then the nullable reference columns of
    ``REFERENCES[object_type]``. ``issues``: one row per problem (``source_key``, ``action``, ``reason``).
    ``aliases``: ``source_key`` → ``survivor_key``: for contacts the merged duplicates, for deals the
    orders that became part of a cart's deal (a late link; see docs/identity.md).
    ``parents``: child types only (line items): the parent keys whose children ``records`` lists in full;
    a synced child of one of them that is neither in ``records`` nor rejected left the source.
    """

    object_type: str
    records: pl.DataFrame
    issues: pl.DataFrame
    aliases: pl.DataFrame | None = None
    parents: pl.Series | None = None

    def keys(self) -> pl.Series:
        """The source keys that will be sent."""
        return self.records.get_column("source_key")

    def present_keys(self) -> pl.Series:
        """Every key the source still has: sent, rejected, excluded or merged into another (aliases).
        A synced record whose key is not here vanished from the source."""
        parts = [self.keys(), self.issues.get_column("source_key")]
        if self.aliases is not None:
            parts.append(self.aliases.get_column("source_key"))
        return pl.concat(parts).unique()
