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
            # one of the three is set: a line item belongs to one deal, order or cart (keys: COMMERCE_LINE_PREFIX)
            references=(Reference("assoc_deals", "deals"), Reference("assoc_orders", "orders"),
                        Reference("assoc_carts", "carts")),
            parent=Reference("assoc_deals", "deals"),
            needs_products_tier=True,
            scopes=("crm.objects.line_items.read", "crm.objects.line_items.write", "e-commerce"),
        ),
        # HubSpot's native commerce objects (commerce.objects: orders_and_carts | both). Default properties as
        # HubSpot documents them (docs/commerce-objects.md); the fp_* ones are ours.
        ObjectSpec(
            "orders",
            "fp_order_id",
            ("fp_order_id", "hs_order_name", "hs_external_order_id", "hs_currency_code", "hs_total_price",
             "hs_subtotal_price", "hs_order_discount", "hs_tax", "hs_shipping_cost", "hs_source_store",
             "hs_fulfillment_status", "hs_payment_status", "hs_external_created_date", "hs_billing_address_email",
             "hs_billing_address_street", "hs_billing_address_city", "hs_billing_address_postal_code",
             "hs_billing_address_state", "hs_billing_address_country", "hs_shipping_address_street",
             "hs_shipping_address_city", "hs_shipping_address_postal_code", "hs_shipping_address_state",
             "hs_shipping_address_country", "fp_order_stage", "fp_order_status", "fp_shipment_status",
             "fp_payment_status", "fp_closed_date"),
            lookups=("hs_pipeline_stage",),
            references=(Reference("assoc_contacts", "contacts"), Reference("assoc_companies", "companies"),
                        Reference("assoc_deals", "deals")),
            deleted_flag=True,
            scopes=_crm_scopes("orders"),
        ),
        ObjectSpec(
            "carts",
            "fp_cart_id",
            ("fp_cart_id", "hs_cart_name", "hs_external_cart_id", "hs_currency_code", "hs_total_price",
             "hs_source_store", "hs_cart_url", "hs_external_status", "hs_external_created_date",
             "hs_external_modified_date", "fp_abandoned"),
            # HubSpot documents no cart → company association type; a cart links to its contact and order
            references=(Reference("assoc_contacts", "contacts"), Reference("assoc_orders", "orders")),
            deleted_flag=True,
            scopes=_crm_scopes("carts"),
        ),
    )
}  # fmt: skip

OBJECT_TYPES: tuple[str, ...] = tuple(SPECS)
COMMERCE_TYPES: tuple[str, ...] = ("orders", "carts")
# The panel's ``commerce.objects``: deals (the default), HubSpot's native orders and carts, or both.
COMMERCE_MODES: tuple[str, ...] = ("deals", "orders_and_carts", "both")


def synced_types(commerce_objects: str = "deals") -> tuple[str, ...]:
    """The object types a ``commerce.objects`` mode syncs, in registry order."""
    skip = {"deals": set(COMMERCE_TYPES), "orders_and_carts": {"deals"}, "both": set()}[commerce_objects]
    return tuple(t for t in OBJECT_TYPES if t not in skip)


# A line item of an order or a cart: its key is this prefix + the order's/cart's key + ":L<line>", so it never
# shares a key with a deal's line item ("O7:L1" of deal O7, "order/O7:L1" of order O7).
COMMERCE_LINE_PREFIX: dict[str, str] = {"orders": "order/", "carts": "cart/"}

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
    "fp_order_id": "FocusPoint order id",
    "fp_cart_id": "FocusPoint cart id",
    "fp_order_stage": "Order stage",
    "fp_closed_date": "Order closed on",
    "fp_abandoned": "Abandoned cart",
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
