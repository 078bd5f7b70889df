"""The canonical source model: one polars schema per entity, read from SAP Business One + FocusPoint.

Every source reader (SQL today, the Service Layer later) produces exactly these frames; every mapping
function consumes them. Keys are strings that stay stable across runs, because they become our unique
ids in HubSpot (see docs/identity.md).

Source keys
-----------
- ``W<id>``      a FocusPoint web customer (``FP_CUSTOMER.CustomerId``), guest checkouts included
- ``BP<code>``   a SAP business partner (``OCRD.CardCode``)
- ``CP<code>``   a SAP contact person (``OCPR.CntctCode``) of a business partner
- ``I<code>``    an item (``OITM.ItemCode``); ``I<code>#<combination>`` one attribute combination of it
- ``O<entry>``   a SAP sales order (``ORDR.DocEntry``)
- ``C<id>``      a FocusPoint shopping cart (``FP_CART.CartId``)

Status vocabularies (the values the deal-stage mapping selects on)
-----------------------------------------------------------------
- order_status:    ``open`` | ``closed`` | ``canceled``       (ORDR.DocStatus / ORDR.CANCELED; ``unknown``
                   for a code SAP never writes)
- shipment_status: ``not_shipped`` | ``partially_shipped`` | ``shipped``   (delivered quantity, DLN1)
- payment_status:  ``unpaid`` | ``partially_paid`` | ``paid``            (OINV.PaidToDate vs DocTotal)
- cart_status:     ``open`` | ``ordered``                                 (FP_CART.Status)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from polars._typing import PolarsDataType



def _schema(columns: Mapping[str, PolarsDataType]) -> pl.Schema:
    return pl.Schema(columns)


ORDER_STATUSES = ("open", "closed", "canceled")
# A status code SAP should never hold (DocStatus not O/C, CANCELED not Y/N): read as this, reported by the
# mapping as repaired, and staged by the panel's unmapped_order_stage. Not selectable in the panel.
UNKNOWN_STATUS = "unknown"
SHIPMENT_STATUSES = ("not_shipped", "partially_shipped", "shipped")
PAYMENT_STATUSES = ("unpaid", "partially_paid", "paid")
CART_STATUSES = ("open", "ordered")
SYSTEM_ROLES = ("Guest", "Registered", "Admins", "Vendors")

Datetime = pl.Datetime("us")

STORES = _schema(
    {
        "store_id": pl.String,  # FP_STORE.StoreId, e.g. "1"
        "store_code": pl.String,  # short code used as SKU prefix, e.g. "EU"
        "name": pl.String,
        "currency": pl.String,  # ISO 4217
        "price_list": pl.Int64,  # ITM1.PriceList this store sells at
    }
)

# One row per person or partner we may send to HubSpot.
CUSTOMERS = _schema(
    {
        "customer_key": pl.String,  # W<id> | BP<CardCode> | CP<CntctCode>
        "kind": pl.String,  # "web" | "bp" | "contact_person"
        "store_id": pl.String,  # web customers: their store; SAP rows: null
        "card_code": pl.String,  # the SAP business partner this row belongs to (null for unlinked web customers)
        "is_company": pl.Boolean,  # bp rows: OCRD.CmpPrivate == 'C'; others false
        "company_name": pl.String,  # bp rows: CardName; contact persons: their partner's CardName
        "email": pl.String,  # raw, as the source holds it (normalized only in mapping)
        "first_name": pl.String,
        "last_name": pl.String,
        "phone": pl.String,
        "roles": pl.List(pl.String),  # system roles (Guest/Registered/Admins/Vendors) + client roles
        "is_guest": pl.Boolean,
        "active": pl.Boolean,  # SAP validFor='Y' and frozenFor='N'; OCPR.Active='Y'; web: not disabled
        "created_at": Datetime,
        "updated_at": Datetime,
    }
)

ADDRESSES = _schema(
    {
        "address_key": pl.String,  # "W<id>:A<addr id>" (web) | "BP<CardCode>:<B|S>:<Address>" (SAP CRD1)
        "owner_key": pl.String,  # customer_key of the owner (W… or BP…)
        "source": pl.String,  # "web" | "sap"
        "address_type": pl.String,  # "billing" | "shipping"
        "is_default": pl.Boolean,  # web: FP_ADDRESS.IsDefault; SAP: OCRD.BillToDef/ShipToDef == Address
        "street": pl.String,
        "street2": pl.String,
        "city": pl.String,
        "zip": pl.String,
        "state": pl.String,
        "country": pl.String,  # ISO 3166-1 alpha-2
        "updated_at": Datetime,
    }
)

# One row per sellable variant: the item itself (combination_id null) and each attribute combination.
ITEMS = _schema(
    {
        "product_key": pl.String,  # I<ItemCode> | I<ItemCode>#<CombinationId>
        "item_code": pl.String,
        "combination_id": pl.String,  # null for the base item
        "name": pl.String,  # OITM.ItemName
        "attributes": pl.String,  # "Color: Red, Size: XL" for a combination; null for the base item
        "sku": pl.String,  # base: ItemCode (or CodeBars); combination: FP_ITEM_COMBINATION.Sku
        "description": pl.String,
        "price": pl.Float64,  # in the item's home store's price list
        "currency": pl.String,
        "store_id": pl.String,  # home store (first store that publishes the item)
        "has_combinations": pl.Boolean,
        "active": pl.Boolean,
        "updated_at": Datetime,
    }
)

ORDER_LINE = pl.Struct(
    {
        "line_num": pl.Int64,
        "item_code": pl.String,
        "combination_id": pl.String,
        "description": pl.String,
        "quantity": pl.Float64,
        "price": pl.Float64,
    }
)

ORDERS = _schema(
    {
        "order_key": pl.String,  # O<DocEntry>
        "doc_entry": pl.Int64,
        "doc_num": pl.Int64,
        "card_code": pl.String,
        "web_customer_key": pl.String,  # W<id> of the cart's customer, when the order came from a cart
        "cart_key": pl.String,  # C<id> when the order came from a web cart (ORDR.U_FP_CartId), else null
        "store_id": pl.String,
        "doc_date": Datetime,
        "total": pl.Float64,
        "currency": pl.String,
        "order_status": pl.String,
        "shipment_status": pl.String,
        "payment_status": pl.String,
        "updated_at": Datetime,
        # sum of quantity × price over the lines (0 without lines): what a deal needs of its lines, so the deals
        # step can load the orders without them (millions of nested lines at scale)
        "lines_total": pl.Float64,
        "lines": pl.List(ORDER_LINE),
    }
)

CART_LINE = pl.Struct(
    {
        "line_num": pl.Int64,
        "item_code": pl.String,
        "combination_id": pl.String,
        "quantity": pl.Float64,
        "price": pl.Float64,
    }
)

CARTS = _schema(
    {
        "cart_key": pl.String,  # C<CartId>
        "cart_id": pl.Int64,
        "store_id": pl.String,
        "customer_key": pl.String,  # W<id> (guests have a web customer row with is_guest true)
        "email": pl.String,  # the checkout email as typed
        "status": pl.String,  # open | ordered
        "order_key": pl.String,  # O<DocEntry> once the cart became an order
        "total": pl.Float64,
        "currency": pl.String,
        "created_at": Datetime,
        "updated_at": Datetime,
        "lines": pl.List(CART_LINE),
    }
)

SCHEMAS: dict[str, pl.Schema] = {
    "stores": STORES,
    "customers": CUSTOMERS,
    "addresses": ADDRESSES,
    "items": ITEMS,
    "orders": ORDERS,
    "carts": CARTS,
}


def empty(entity: str) -> pl.DataFrame:
    """An empty frame of the entity's canonical schema."""
    return pl.DataFrame(schema=SCHEMAS[entity])


def lines_total(lines: pl.Expr) -> pl.Expr:
    """Sum of quantity × price over a list of lines (0 for an empty list, null for none)."""
    return lines.list.eval(pl.element().struct.field("quantity") * pl.element().struct.field("price")).list.sum()


def conform(frame: pl.DataFrame, entity: str) -> pl.DataFrame:
    """Select and cast ``frame`` to the canonical schema of ``entity`` (missing columns become null). An orders
    frame without its ``lines_total`` (built by hand, e.g. in a test) gets it from its lines."""
    schema = SCHEMAS[entity]
    if entity == "orders" and "lines" in frame.columns and (
        "lines_total" not in frame.columns or frame.get_column("lines_total").null_count() == frame.height
    ):
        frame = frame.with_columns(lines_total(pl.col("lines")).alias("lines_total"))
    return frame.select(
        [
            (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )
