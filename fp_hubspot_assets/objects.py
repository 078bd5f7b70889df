"""The object-type registry: one ``ObjectSpec`` per HubSpot object type the sync writes.

Everything that differs between contacts, companies, products, deals and line items is declared here once:
our unique id property, the properties we write, the columns the sync resolves before sending, the
associations (reference column → associated type), the parent of a child type, whether an email conflict is
adopted, tier gating and the deleted-in-source flag. The mapping contract (``mapping/model.py``), the sync
engine, the HubSpot set-up and the Dagster writers read it. To add a property, add it to ``properties``
here (and its label to ``CUSTOM_PROPERTY_LABELS`` if it is one of ours); to add an object type, add a spec
here and a mapping module under ``mapping/``.

No I/O and no Dagster: every layer may import it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Reference:
    """A payload column naming another record by its source key, written as a HubSpot association."""

    column: str
    to_type: str


@dataclass(frozen=True)
class ObjectSpec:
    name: str  # HubSpot's object type name, as in the API paths
    id_property: str  # our unique property (hasUniqueValue): the idProperty of every upsert
    properties: tuple[str, ...]  # every property the mapping writes, id property first
    lookups: tuple[str, ...] = ()  # columns the sync resolves to HubSpot values before sending
    references: tuple[Reference, ...] = ()
    parent: Reference | None = None  # a child type: its records belong to one record of the parent type
    adopt_on_conflict: bool = False  # HubSpot keeps a unique email: a 409 may mean "adopt" (docs/identity.md)
    needs_products_tier: bool = False  # sent on Professional/Enterprise only
    deleted_flag: bool = False  # follows the panel's ``deletes`` policy when its source vanishes
    # OAuth scopes the sync needs for this type (HubSpot's published scope list): object read/write, schema
    # read/write for our properties. Products and line item properties are commerce objects, granted by
    # ``e-commerce`` (HubSpot has no crm.schemas.products.* or crm.schemas.line_items.write).
    scopes: tuple[str, ...] = ()

    @property
    def reference_columns(self) -> tuple[str, ...]:
        """Payload columns that are not properties: lookups, then association references."""
        return (*self.lookups, *(r.column for r in self.references))


def _crm_scopes(object_type: str) -> tuple[str, ...]:
    return tuple(f"crm.{kind}.{object_type}.{access}" for kind in ("objects", "schemas") for access in ("read", "write"))


SPECS: dict[str, ObjectSpec] = {
    spec.name: spec
    for spec in (
        ObjectSpec(
            "contacts",
            "fp_customer_id",
            ("fp_customer_id", "email", "firstname", "lastname", "phone", "address", "city", "zip", "state",
             "country", "company", "fp_roles", "fp_store", "fp_source"),
            references=(Reference("assoc_companies", "companies"),),
            adopt_on_conflict=True,
            deleted_flag=True,
            scopes=_crm_scopes("contacts"),
        ),
        ObjectSpec(
            "companies",
            "fp_company_id",
            ("fp_company_id", "name", "domain", "phone", "address", "address2", "city", "zip", "state", "country",
             "fp_group", "fp_source"),
            deleted_flag=True,
            scopes=_crm_scopes("companies"),
        ),
        ObjectSpec(
            "products",
            "fp_product_id",
            ("fp_product_id", "name", "hs_sku", "price", "description", "fp_store"),
            needs_products_tier=True,
            deleted_flag=True,
            scopes=("e-commerce",),
        ),
        ObjectSpec(
            "deals",
            "fp_deal_id",
            ("fp_deal_id", "dealname", "amount", "deal_currency_code", "closedate", "fp_order_status",
             "fp_shipment_status", "fp_payment_status", "fp_store"),
            lookups=("dealstage",),
            references=(Reference("assoc_contacts", "contacts"), Reference("assoc_companies", "companies")),
            deleted_flag=True,
            scopes=_crm_scopes("deals"),
        ),
        ObjectSpec(
            "line_items",
            "fp_line_item_id",
            ("fp_line_item_id", "name", "quantity", "price"),
            lookups=("product_key",),
            references=(Reference("assoc_deals", "deals"),),
            parent=Reference("assoc_deals", "deals"),
            needs_products_tier=True,
            scopes=("crm.objects.line_items.read", "crm.objects.line_items.write", "e-commerce"),
        ),
    )
}  # fmt: skip

OBJECT_TYPES: tuple[str, ...] = tuple(SPECS)

# Labels for the custom ``fp_*`` properties the HubSpot set-up creates.
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

# A child's key is its parent's key, this separator and its line number: "C77:L2" is line 2 of deal C77.
CHILD_SEPARATOR = ":L"


def child_key(parent: pl.Expr, line: pl.Expr) -> pl.Expr:
    return pl.format("{}" + CHILD_SEPARATOR + "{}", parent, line.cast(pl.String))


def parent_of(key: pl.Expr) -> pl.Expr:
    """The parent key of a child key (null when it is not one)."""
    return key.str.extract(r"^(.*)" + CHILD_SEPARATOR + r"[^:]*$", 1)


def line_of(key: pl.Expr) -> pl.Expr:
    """The ``:L<line>`` suffix of a child key."""
    return key.str.extract(r"^.*(" + CHILD_SEPARATOR + r"[^:]*)$", 1)
