"""SAP Business One's table layout (the part we read) plus the FocusPoint web-store tables.

SAP tables keep SAP's own names (``OCRD``, ``CardCode``, ``E_MailL``, ``Dscription``…) so the same reader runs
against a real SAP Business One database; only the columns the canonical model needs are declared, and the
user-defined fields we rely on carry SAP's ``U_`` prefix (``U_FP_CartId``). The ``FP_*`` tables belong to the
FocusPoint store and their shape is ours. docs/source-model.md documents every table and how it maps to the
canonical frames in ``source_model.py``.

Change markers (what incremental reads filter on, so each one is indexed):
- SAP documents and master data: ``UpdateDate`` (the day, time part zero) + ``UpdateTS`` (``HHMMSS`` integer).
  Child rows (CRD1, OCPR, ITM1, RDR1…) have no marker of their own: saving them saves the parent object.
- FocusPoint tables: ``UpdatedAt`` (a full timestamp, UTC, naive).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.schema import SchemaItem

metadata = sa.MetaData()

YN = sa.String(1)  # SAP's 'Y'/'N' flags


def _code(length: int = 50) -> sa.String:
    return sa.String(length)


def _sap_markers() -> list[sa.Column]:
    """CreateDate / UpdateDate / UpdateTS as every SAP object header carries them."""
    return [
        sa.Column("CreateDate", sa.DateTime),
        sa.Column("UpdateDate", sa.DateTime),
        sa.Column("UpdateTS", sa.Integer),  # HHMMSS of the last update on UpdateDate
    ]


def _marker_index(table: str) -> sa.Index:
    return sa.Index(f"ix_{table}_update", "UpdateDate", "UpdateTS")


# --- SAP Business One: business partners ------------------------------------------------------------------

OCRG = sa.Table(
    "OCRG",
    metadata,
    sa.Column("GroupCode", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("GroupName", sa.String(100), nullable=False),
    sa.Column("GroupType", sa.String(1), nullable=False),  # 'C' customer group, 'S' supplier group
)

OCRD = sa.Table(
    "OCRD",
    metadata,
    sa.Column("CardCode", _code(), primary_key=True),
    sa.Column("CardName", sa.String(200)),
    sa.Column("CardType", sa.String(1), nullable=False),  # 'C' customer, 'S' supplier, 'L' lead
    sa.Column("CmpPrivate", sa.String(1)),  # 'C' company, 'I' private person
    sa.Column("GroupCode", sa.Integer),
    sa.Column("E_Mail", sa.String(200)),
    sa.Column("Phone1", sa.String(50)),
    sa.Column("validFor", YN),
    sa.Column("frozenFor", YN),
    sa.Column("BillToDef", sa.String(50)),  # CRD1.Address of the default bill-to address
    sa.Column("ShipToDef", sa.String(50)),  # CRD1.Address of the default ship-to address
    *_sap_markers(),
    _marker_index("OCRD"),
)

CRD1 = sa.Table(
    "CRD1",
    metadata,
    sa.Column("CardCode", _code(), primary_key=True),
    sa.Column("Address", sa.String(50), primary_key=True),  # the address's name within the partner
    sa.Column("AdresType", sa.String(1), primary_key=True),  # 'B' bill-to, 'S' ship-to
    sa.Column("Street", sa.String(100)),
    sa.Column("Block", sa.String(100)),
    sa.Column("City", sa.String(100)),
    sa.Column("ZipCode", sa.String(20)),
    sa.Column("County", sa.String(100)),
    sa.Column("State", sa.String(3)),
    sa.Column("Country", sa.String(3)),
)

OCPR = sa.Table(
    "OCPR",
    metadata,
    sa.Column("CntctCode", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("CardCode", _code()),
    sa.Column("Name", sa.String(50)),
    sa.Column("FirstName", sa.String(50)),
    sa.Column("LastName", sa.String(50)),
    sa.Column("E_MailL", sa.String(200)),
    sa.Column("Tel1", sa.String(50)),
    sa.Column("Active", YN),
    sa.Index("ix_OCPR_CardCode", "CardCode"),
)

# --- SAP Business One: items and prices -------------------------------------------------------------------

OITM = sa.Table(
    "OITM",
    metadata,
    sa.Column("ItemCode", _code(), primary_key=True),
    sa.Column("ItemName", sa.String(200)),
    sa.Column("ItmsGrpCod", sa.Integer),
    sa.Column("UserText", sa.Text),  # the item's remarks, our product description
    sa.Column("validFor", YN),
    sa.Column("frozenFor", YN),
    sa.Column("SalUnitMsr", sa.String(20)),
    sa.Column("CodeBars", sa.String(50)),
    *_sap_markers(),
    _marker_index("OITM"),
)

ITM1 = sa.Table(
    "ITM1",
    metadata,
    sa.Column("ItemCode", _code(), primary_key=True),
    sa.Column("PriceList", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("Price", sa.Float),
    sa.Column("Currency", sa.String(3)),
)


# --- SAP Business One: marketing documents (orders, deliveries, invoices) --------------------------------


def _document(name: str, *extra: sa.Column) -> sa.Table:
    """A marketing-document header; ORDR, ODLN and OINV share SAP's header columns."""
    return sa.Table(
        name,
        metadata,
        sa.Column("DocEntry", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("DocNum", sa.Integer),
        sa.Column("CardCode", _code()),
        sa.Column("CardName", sa.String(200)),
        sa.Column("DocDate", sa.DateTime),
        sa.Column("DocDueDate", sa.DateTime),
        sa.Column("DocTotal", sa.Float),
        sa.Column("DocCur", sa.String(3)),
        sa.Column("DocStatus", sa.String(1)),  # 'O' open, 'C' closed
        sa.Column("CANCELED", YN),
        *extra,
        *_sap_markers(),
        _marker_index(name),
    )


def _document_lines(name: str, *extra: SchemaItem) -> sa.Table:
    """Document lines; RDR1, DLN1 and INV1 share these columns. Base* link a line to the line it was copied from."""
    return sa.Table(
        name,
        metadata,
        sa.Column("DocEntry", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("LineNum", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ItemCode", _code()),
        sa.Column("Dscription", sa.String(200)),  # sic: SAP's spelling
        sa.Column("Quantity", sa.Float),
        sa.Column("Price", sa.Float),
        sa.Column("LineTotal", sa.Float),
        sa.Column("LineStatus", sa.String(1)),
        *extra,
    )


def _base_link() -> list[sa.Column]:
    return [
        sa.Column("BaseType", sa.Integer),  # 17 = sales order
        sa.Column("BaseEntry", sa.Integer),  # ORDR.DocEntry when BaseType = 17
        sa.Column("BaseLine", sa.Integer),  # RDR1.LineNum
    ]


ORDR = _document(
    "ORDR",
    sa.Column("U_FP_CartId", sa.Integer),  # FP_CART.CartId when the order came from a web cart
    sa.Column("U_FP_StoreId", sa.Integer),  # FP_STORE.StoreId of a web order
)
RDR1 = _document_lines("RDR1", sa.Column("U_FP_CombinationId", sa.Integer))
ODLN = _document("ODLN")
DLN1 = _document_lines("DLN1", *_base_link(), sa.Index("ix_DLN1_base", "BaseType", "BaseEntry"))
OINV = _document("OINV", sa.Column("PaidToDate", sa.Float))
INV1 = _document_lines("INV1", *_base_link(), sa.Index("ix_INV1_base", "BaseType", "BaseEntry"))

# --- FocusPoint web store ---------------------------------------------------------------------------------

FP_STORE = sa.Table(
    "FP_STORE",
    metadata,
    sa.Column("StoreId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("StoreCode", sa.String(10), nullable=False),  # SKU prefix in multi-store setups
    sa.Column("Name", sa.String(100)),
    sa.Column("Currency", sa.String(3)),
    sa.Column("PriceList", sa.Integer),  # ITM1.PriceList the store sells at
)

FP_ROLE = sa.Table(
    "FP_ROLE",
    metadata,
    sa.Column("RoleId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("Name", sa.String(50), nullable=False),
    sa.Column("IsSystem", sa.Boolean, nullable=False),  # Guest/Registered/Admins/Vendors vs client roles
)

FP_CUSTOMER = sa.Table(
    "FP_CUSTOMER",
    metadata,
    sa.Column("CustomerId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("StoreId", sa.Integer),
    sa.Column("CardCode", _code()),  # the SAP business partner a B2B web login belongs to
    sa.Column("Email", sa.String(200)),  # as typed: may be empty, invalid, or differ only in case/spaces
    sa.Column("FirstName", sa.String(100)),
    sa.Column("LastName", sa.String(100)),
    sa.Column("Phone", sa.String(50)),
    sa.Column("IsGuest", sa.Boolean, nullable=False),  # a guest checkout keeps a customer row without login
    sa.Column("Disabled", sa.Boolean, nullable=False),
    sa.Column("CreatedAt", sa.DateTime),
    sa.Column("UpdatedAt", sa.DateTime),
    sa.Index("ix_FP_CUSTOMER_UpdatedAt", "UpdatedAt"),
)

FP_CUSTOMER_ROLE = sa.Table(
    "FP_CUSTOMER_ROLE",
    metadata,
    sa.Column("CustomerId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("RoleId", sa.Integer, primary_key=True, autoincrement=False),
)

FP_ADDRESS = sa.Table(
    "FP_ADDRESS",
    metadata,
    sa.Column("AddressId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("CustomerId", sa.Integer),
    sa.Column("AddressType", sa.String(10)),  # 'billing' | 'shipping'
    sa.Column("IsDefault", sa.Boolean),
    sa.Column("Street", sa.String(100)),
    sa.Column("Street2", sa.String(100)),
    sa.Column("City", sa.String(100)),
    sa.Column("Zip", sa.String(20)),
    sa.Column("State", sa.String(50)),
    sa.Column("Country", sa.String(2)),
    sa.Column("UpdatedAt", sa.DateTime),
    sa.Index("ix_FP_ADDRESS_UpdatedAt", "UpdatedAt"),
    sa.Index("ix_FP_ADDRESS_CustomerId", "CustomerId"),
)

FP_ITEM_STORE = sa.Table(
    "FP_ITEM_STORE",
    metadata,
    sa.Column("ItemCode", _code(), primary_key=True),
    sa.Column("StoreId", sa.Integer, primary_key=True, autoincrement=False),
)

FP_ITEM_COMBINATION = sa.Table(
    "FP_ITEM_COMBINATION",
    metadata,
    sa.Column("CombinationId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ItemCode", _code()),
    sa.Column("Sku", sa.String(80)),
    sa.Column("Attributes", sa.String(200)),  # "Color: Red, Size: XL"
    sa.Column("PriceDelta", sa.Float),  # added to the item's price-list price
    sa.Column("UpdatedAt", sa.DateTime),
    sa.Index("ix_FP_ITEM_COMBINATION_UpdatedAt", "UpdatedAt"),
    sa.Index("ix_FP_ITEM_COMBINATION_ItemCode", "ItemCode"),
)

FP_CART = sa.Table(
    "FP_CART",
    metadata,
    sa.Column("CartId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("StoreId", sa.Integer),
    sa.Column("CustomerId", sa.Integer),
    sa.Column("Email", sa.String(200)),  # the checkout email as typed
    sa.Column("Status", sa.String(10)),  # 'open' | 'ordered'
    sa.Column("OrderDocEntry", sa.Integer),  # ORDR.DocEntry once ordered
    sa.Column("CreatedAt", sa.DateTime),
    sa.Column("UpdatedAt", sa.DateTime),  # bumped by every line change and by checkout
    sa.Index("ix_FP_CART_UpdatedAt", "UpdatedAt"),
)

FP_CART_LINE = sa.Table(
    "FP_CART_LINE",
    metadata,
    sa.Column("CartId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("LineNum", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ItemCode", _code()),
    sa.Column("CombinationId", sa.Integer),
    sa.Column("Quantity", sa.Float),
    sa.Column("Price", sa.Float),  # unit price when the line was added
)

# Incremental reads find the customers that share an e-mail or a business partner with a changed one by index
# (sap/dependants.py); the e-mail indexes hold the same lower(trim(...)) expression the queries use.
sa.Index("ix_FP_CUSTOMER_CardCode", FP_CUSTOMER.c.CardCode)
sa.Index("ix_FP_CUSTOMER_email", sa.func.lower(sa.func.trim(FP_CUSTOMER.c.Email)))
sa.Index("ix_OCRD_email", sa.func.lower(sa.func.trim(OCRD.c.E_Mail)))
sa.Index("ix_OCPR_email", sa.func.lower(sa.func.trim(OCPR.c.E_MailL)))
# A cart and its order are one deal: an incremental read follows the link both ways by index (sap/reader.py).
sa.Index("ix_ORDR_U_FP_CartId", ORDR.c.U_FP_CartId)
sa.Index("ix_FP_CART_OrderDocEntry", FP_CART.c.OrderDocEntry)

SAP_TABLES = ("OCRG", "OCRD", "CRD1", "OCPR", "OITM", "ITM1", "ORDR", "RDR1", "ODLN", "DLN1", "OINV", "INV1")
FP_TABLES = (
    "FP_STORE",
    "FP_ROLE",
    "FP_CUSTOMER",
    "FP_CUSTOMER_ROLE",
    "FP_ADDRESS",
    "FP_ITEM_STORE",
    "FP_ITEM_COMBINATION",
    "FP_CART",
    "FP_CART_LINE",
)
ORDER_OBJECT_TYPE = 17  # SAP's object type of a sales order, as DLN1/INV1.BaseType holds it
