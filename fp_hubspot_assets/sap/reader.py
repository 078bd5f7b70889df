"""The SQL source reader: SAP Business One + FocusPoint tables -> the canonical frames of ``source_model.py``.

``SapReader(url).read(entity, since)`` returns a ``ReadResult``: ``frame`` in exactly the canonical schema, and
``rejects`` (entity, source_key, reason) for records that cannot be read (an unparseable date or number, a
missing key or link). A reject never stops a read; its neighbours are read as usual.

``since`` makes a read incremental: rows whose change marker is at or after ``since`` (SAP: ``UpdateDate`` +
``UpdateTS``; FocusPoint: ``UpdatedAt``). Child rows without a marker follow their owner (CRD1 and OCPR their
business partner, ITM1 and combinations their item), and an order also counts as changed when one of its
deliveries or invoices changed; a cart and its order count as changed together (they are one deal). Which
orders and carts that is gets resolved once per read, each link from its own index (``changed_order_keys``,
``changed_cart_keys``); the rows, lines and progress are then read by those keys.
``max_updated_at(entity)`` gives the newest marker, for sensor cursors.
Customers, addresses and items can also be read by key (``Keys``): the changed rows plus the rows the mapping
needs beside them, as ``sap/dependants.py`` finds them.
How every table maps to the frames: docs/source-model.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from fp_hubspot_assets.sap.fetch import (
    REJECTS,
    Source,
    as_datetime,
    empty_rejects,
    max_stamp,
    parse,
    sap_stamp,
    split_rejects,
)
from fp_hubspot_assets.sap.tables import ORDER_OBJECT_TYPE
from fp_hubspot_assets.source_model import CART_LINE, ORDER_LINE, SCHEMAS, UNKNOWN_STATUS, conform

SAP_PRICE_LIST = 1  # price list of items no store publishes
PAID_TOLERANCE = 0.005
# Change markers later than now + this are a clock error in the source (9999-12-31): they are left out of
# the markers, so one such row cannot move a cursor into the future and mute the sensors and schedule.
MARKER_SKEW = timedelta(minutes=5)
MARKER_TABLES: dict[str, list[tuple[str, str]]] = {
    "stores": [],
    "customers": [("fp", "FP_CUSTOMER"), ("sap", "OCRD")],
    "addresses": [("fp", "FP_ADDRESS"), ("sap", "OCRD")],
    "items": [("sap", "OITM"), ("fp", "FP_ITEM_COMBINATION")],
    "orders": [("sap", "ORDR"), ("sap", "ODLN"), ("sap", "OINV")],
    "carts": [("fp", "FP_CART")],
}
# An order and its cart are one deal: each of the two reads covers changes on both sides (``changed_order_keys``,
# ``changed_cart_keys``), so both windows end at the newest marker of either side. With the cart table alone, an
# order shipped after the newest cart change kept every later carts read re-reading it until a cart changed.
WINDOW_TABLES = {**MARKER_TABLES, "orders": MARKER_TABLES["orders"] + MARKER_TABLES["carts"],
                 "carts": MARKER_TABLES["carts"] + MARKER_TABLES["orders"]}  # fmt: skip
# the key column of each marked table, for reporting rows with a future marker
_MARKER_KEYS = {"FP_CUSTOMER": "CustomerId", "OCRD": "CardCode", "FP_ADDRESS": "AddressId", "OITM": "ItemCode",
                "FP_ITEM_COMBINATION": "CombinationId", "ORDR": "DocEntry", "ODLN": "DocEntry", "OINV": "DocEntry",
                "FP_CART": "CartId"}


def marker_horizon() -> datetime:
    """The latest change marker believed (naive UTC, like the source)."""
    return datetime.now(UTC).replace(tzinfo=None) + MARKER_SKEW
ENTITIES = tuple(SCHEMAS)
STRINGS = pl.List(pl.String)
Frames = tuple[pl.DataFrame, pl.DataFrame]
Scope = Callable[[str, str], str]  # (alias, column) -> the SQL condition selecting a read's documents
# A full read of orders or carts runs this many documents at a time: each slice's raw rows, lines, deliveries and
# invoices are nested and freed before the next is fetched, so the read holds its result plus one slice (at 1M
# customers the one-piece read of 1.5M orders with 3.7M lines was the whole job's peak).
FULL_READ_SLICE = 250_000


@dataclass(frozen=True)
class Keys:
    """Which rows a keyed read covers: web customers (``FP_CUSTOMER.CustomerId``, with their roles and web
    addresses), business partners (``OCRD.CardCode``, with their contact persons and SAP addresses), further
    contact persons (``OCPR.CntctCode``) and items (``OITM.ItemCode``, with prices and combinations)."""

    web: frozenset[int] = field(default_factory=frozenset)
    partners: frozenset[str] = field(default_factory=frozenset)
    persons: frozenset[int] = field(default_factory=frozenset)
    items: frozenset[str] = field(default_factory=frozenset)

    def params(self, source: Source) -> dict[str, object]:
        return {name: source.keys_param(getattr(self, name)) for name in ("web", "partners", "persons", "items")}

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("web", "partners", "persons", "items")}


@dataclass(frozen=True)
class DealKeys:
    """The orders (``ORDR.DocEntry``) and carts (``FP_CART.CartId``) incremental reads cover: each resolved
    once from the change-marker and link indexes (``SapReader.deal_keys``), then read by key."""

    orders: frozenset[int] = field(default_factory=frozenset)
    carts: frozenset[int] = field(default_factory=frozenset)


Since = datetime | Keys | None
KEYED_ENTITIES = ("customers", "addresses", "items")


@dataclass(frozen=True)
class ReadResult:
    frame: pl.DataFrame  # the entity's canonical schema, exactly
    rejects: pl.DataFrame  # entity, source_key, reason


def _key(prefix: str, column: str) -> pl.Expr:
    return pl.format(prefix + "{}", pl.col(column))


def _flag(column: str, yes: str = "Y") -> pl.Expr:
    return pl.col(column).cast(pl.String).str.strip_chars().str.to_uppercase() == yes


def _country() -> pl.Expr:
    """Codes upper-cased ("de" → "DE"); a name stays as written (the mapping turns it into its ISO code)."""
    text = pl.col("Country").str.strip_chars()
    return pl.when(text.str.len_chars() <= 3).then(text.str.to_uppercase()).otherwise(text)


def _bool(column: str) -> pl.Expr:
    """A boolean column as SQLite (0/1) or other databases (true/false) return it."""
    return pl.col(column).cast(pl.Int64, strict=False).cast(pl.Boolean)


def _reject_rows(frame: pl.DataFrame, entity: str, key: pl.Expr, reason: str) -> pl.DataFrame:
    return frame.select(
        pl.lit(entity).alias("entity"), key.cast(pl.String).alias("source_key"), pl.lit(reason).alias("reason")
    ).cast(REJECTS)


def _first_reason(frame: pl.DataFrame, structural: pl.Expr, parsed: pl.Series) -> pl.Series:
    """Per row: the structural problem (missing key, unknown code) if any, else the parse problem."""
    return frame.select(pl.coalesce(structural, pl.lit(parsed)).alias("reason")).to_series()


def _nest(
    lines: pl.DataFrame, owner: str, struct: pl.Struct, fields: dict[str, pl.Expr], *extra: pl.Expr
) -> pl.DataFrame:
    """Lines -> one row per owner with the lines as a list of ``struct`` (ordered by line number), plus the
    ``extra`` aggregations."""
    return (
        lines.sort(owner, "LineNum")
        .group_by(owner, maintain_order=True)
        .agg(pl.struct([expr.alias(name) for name, expr in fields.items()]).cast(struct).alias("lines"), *extra)
    )


class SapReader:
    """Reads the canonical frames from a SAP Business One + FocusPoint database at a SQLAlchemy URL."""

    def __init__(self, url: str, full_read_slice: int = FULL_READ_SLICE, time_zone: str = "UTC") -> None:
        """``time_zone``: the zone the source stamps its rows in (``$FP_SAP_TIME_ZONE``; frames come out in UTC)."""
        self.source = Source(url, time_zone)
        self.full_read_slice = full_read_slice

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> SapReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, entity: str, since: Since = None) -> ReadResult:
        """``since``: None reads everything, a moment the rows changed at or after it, ``Keys`` those rows."""
        readers: dict[str, Callable[[Any], Frames]] = {
            "stores": self._stores,
            "customers": self._customers,
            "addresses": self._addresses,
            "items": self._items,
            "orders": self._orders,
            "carts": self._carts,
        }
        if entity not in readers:
            raise ValueError(f"unknown entity {entity!r}; one of {', '.join(ENTITIES)}")
        if isinstance(since, Keys) and entity not in KEYED_ENTITIES:
            raise ValueError(f"{entity} are read by change marker, not by key")
        frame, rejects = readers[entity](since)
        return ReadResult(conform(frame, entity), rejects)

    def read_all(self, since: datetime | None = None) -> dict[str, ReadResult]:
        return {entity: self.read(entity, since) for entity in ENTITIES}

    def _q(self, sql: str, since: Since) -> pl.DataFrame:
        params = since.params(self.source) if isinstance(since, Keys) else self.source.since_params(since)
        return self.source.query(sql, params)

    def _fp_scope(self, alias: str, since: Since, key: str, keys: str) -> str:
        """FocusPoint rows changed since ``since``, or whose ``key`` column is among ``Keys.<keys>``."""
        if isinstance(since, Keys):
            return self.source.in_keys(f'{alias}."{key}"', keys)
        return self.source.fp_changed(alias, since)

    def _partner_scope(self, alias: str, since: Since) -> str:
        if isinstance(since, Keys):
            return self.source.in_keys(f'{alias}."CardCode"', "partners")
        return self.source.sap_changed(alias, since)

    # -- stores ---------------------------------------------------------------------------------------------

    def _stores(self, since: datetime | None) -> Frames:
        """Stores have no change marker and are few: always read whole."""
        raw = self.source.query(
            'SELECT s."StoreId", s."StoreCode", s."Name", s."Currency", s."PriceList" FROM "FP_STORE" s '
            'ORDER BY s."StoreId"'
        )
        frame = raw.select(
            pl.col("StoreId").cast(pl.String).alias("store_id"),
            pl.col("StoreCode").alias("store_code"),
            pl.col("Name").alias("name"),
            pl.col("Currency").alias("currency"),
            pl.col("PriceList").cast(pl.Int64, strict=False).alias("price_list"),
        )
        return frame, empty_rejects()

    # -- customers ------------------------------------------------------------------------------------------

    def _customers(self, since: Since) -> Frames:
        parts = [self._web_customers(since), self._partners(since), self._contact_persons(since)]
        frames = [conform(f, "customers") for f, _ in parts]
        return pl.concat(frames), pl.concat([r for _, r in parts])

    def _web_customers(self, since: Since) -> Frames:
        t, changed = self.source.text, self._fp_scope("c", since, "CustomerId", "web")
        raw = self._q(
            f'SELECT c."CustomerId", c."StoreId", c."CardCode", p."CardName", c."Email", c."FirstName", '
            f'c."LastName", c."Phone", c."IsGuest", c."Disabled", {t("c", "CreatedAt")}, '
            f'{t("c", "UpdatedAt")} '
            f'FROM "FP_CUSTOMER" c LEFT JOIN "OCRD" p ON p."CardCode" = c."CardCode" '
            f'WHERE {changed} ORDER BY c."CustomerId"',
            since,
        )
        raw, reason = parse(raw, {"CreatedAt": ("datetime", "CreatedAt"), "UpdatedAt": ("datetime", "UpdatedAt")},
                            self.source.zone)
        raw, rejects = split_rejects(raw, reason, "customers", _key("W", "CustomerId"))
        roles = self._q(
            'SELECT cr."CustomerId", r."Name" FROM "FP_CUSTOMER_ROLE" cr '
            'JOIN "FP_ROLE" r ON r."RoleId" = cr."RoleId" JOIN "FP_CUSTOMER" c ON c."CustomerId" = cr."CustomerId" '
            f'WHERE {changed} ORDER BY cr."CustomerId", cr."RoleId"',
            since,
        )
        if roles.height:
            raw = raw.join(
                roles.group_by("CustomerId", maintain_order=True).agg(pl.col("Name").cast(pl.String).alias("roles")),
                on="CustomerId",
                how="left",
            )
        else:
            raw = raw.with_columns(pl.lit(None, dtype=STRINGS).alias("roles"))
        no_roles = pl.lit([], dtype=STRINGS)
        is_guest = _bool("IsGuest").fill_null(False)
        frame = raw.select(
            _key("W", "CustomerId").alias("customer_key"),
            pl.lit("web").alias("kind"),
            pl.col("StoreId").cast(pl.String).alias("store_id"),
            pl.col("CardCode").alias("card_code"),
            pl.lit(False).alias("is_company"),
            pl.col("CardName").alias("company_name"),
            pl.col("Email").alias("email"),
            pl.col("FirstName").alias("first_name"),
            pl.col("LastName").alias("last_name"),
            pl.col("Phone").alias("phone"),
            pl.when(is_guest)
            .then(pl.concat_list([pl.lit("Guest"), pl.col("roles").fill_null(no_roles)]).list.unique(maintain_order=True))
            .otherwise(pl.col("roles").fill_null(no_roles))
            .alias("roles"),
            is_guest.alias("is_guest"),
            (~_bool("Disabled").fill_null(False)).alias("active"),
            pl.col("CreatedAt").alias("created_at"),
            pl.col("UpdatedAt").alias("updated_at"),
        )
        return frame, rejects

    def _partner_columns(self, alias: str) -> str:
        t = self.source.text
        return (
            f'g."GroupName", {t(alias, "CreateDate")}, {t(alias, "UpdateDate")}, {alias}."UpdateTS"'
        )

    def _sap_dates(self, raw: pl.DataFrame, entity: str, key: pl.Expr) -> Frames:
        raw, reason = parse(raw, {"CreateDate": ("day", "CreateDate"), "UpdateDate": ("day", "UpdateDate")})
        raw, rejects = split_rejects(raw, reason, entity, key)
        return raw.with_columns(self._stamp().alias("__updated")), rejects

    @staticmethod
    def _partner_roles() -> pl.Expr:
        """'Registered' plus the partner's OCRG group as a client role."""
        return (
            pl.concat_list([pl.lit("Registered"), pl.col("GroupName").cast(pl.String)])
            .list.drop_nulls()
            .alias("roles")
        )

    def _partners(self, since: Since) -> Frames:
        raw = self._q(
            'SELECT p."CardCode", p."CardName", p."CmpPrivate", p."E_Mail", p."Phone1", p."validFor", '
            f'p."frozenFor", {self._partner_columns("p")} '
            'FROM "OCRD" p LEFT JOIN "OCRG" g ON g."GroupCode" = p."GroupCode" '
            f'WHERE p."CardType" = \'C\' AND {self._partner_scope("p", since)} ORDER BY p."CardCode"',
            since,
        )
        raw, rejects = self._sap_dates(raw, "customers", _key("BP", "CardCode"))
        private = _flag("CmpPrivate", "I")
        name = pl.col("CardName").str.strip_chars()
        frame = raw.select(
            _key("BP", "CardCode").alias("customer_key"),
            pl.lit("bp").alias("kind"),
            pl.col("CardCode").alias("card_code"),
            (~private).alias("is_company"),
            pl.col("CardName").alias("company_name"),
            pl.col("E_Mail").alias("email"),
            pl.when(private).then(name.str.extract(r"^(\S+)\s")).alias("first_name"),
            pl.when(private).then(name.str.extract(r"^\S+\s+(.+)$").fill_null(name)).alias("last_name"),
            pl.col("Phone1").alias("phone"),
            self._partner_roles(),
            pl.lit(False).alias("is_guest"),
            (_flag("validFor") & ~_flag("frozenFor")).fill_null(False).alias("active"),
            pl.col("CreateDate").alias("created_at"),
            pl.col("__updated").alias("updated_at"),
        )
        return frame, rejects

    def _contact_persons(self, since: Since) -> Frames:
        """Contact persons carry their partner's markers: SAP saves them through the partner."""
        scope = self._partner_scope("p", since)
        if isinstance(since, Keys):
            person = self.source.in_keys('cp."CntctCode"', "persons")
            scope = f"({scope} OR {person})"
        raw = self._q(
            'SELECT cp."CntctCode", cp."CardCode", p."CardCode" AS "Partner", cp."Name", cp."FirstName", '
            'cp."LastName", cp."E_MailL", cp."Tel1", cp."Active", p."CardName", '
            f'{self._partner_columns("p")} '
            'FROM "OCPR" cp LEFT JOIN "OCRD" p ON p."CardCode" = cp."CardCode" '
            'LEFT JOIN "OCRG" g ON g."GroupCode" = p."GroupCode" '
            f'WHERE (p."CardCode" IS NULL OR p."CardType" = \'C\') AND {scope} '
            'ORDER BY cp."CntctCode"',
            since,
        )
        key = _key("CP", "CntctCode")
        orphan = raw.filter(pl.col("Partner").is_null())
        rejects = [_reject_rows(orphan, "customers", key, "contact person without a business partner")]
        raw, bad_dates = self._sap_dates(raw.filter(pl.col("Partner").is_not_null()), "customers", key)
        name = pl.col("Name").str.strip_chars()
        frame = raw.select(
            key.alias("customer_key"),
            pl.lit("contact_person").alias("kind"),
            pl.col("CardCode").alias("card_code"),
            pl.lit(False).alias("is_company"),
            pl.col("CardName").alias("company_name"),
            pl.col("E_MailL").alias("email"),
            pl.col("FirstName").fill_null(name.str.extract(r"^(\S+)\s")).alias("first_name"),
            pl.col("LastName").fill_null(name.str.extract(r"^\S+\s+(.+)$").fill_null(name)).alias("last_name"),
            pl.col("Tel1").alias("phone"),
            self._partner_roles(),
            pl.lit(False).alias("is_guest"),
            _flag("Active").fill_null(False).alias("active"),
            pl.col("CreateDate").alias("created_at"),
            pl.col("__updated").alias("updated_at"),
        )
        return frame, pl.concat([*rejects, bad_dates])

    # -- addresses ------------------------------------------------------------------------------------------

    def _addresses(self, since: Since) -> Frames:
        web, web_rejects = self._web_addresses(since)
        sap, sap_rejects = self._sap_addresses(since)
        return pl.concat([conform(web, "addresses"), conform(sap, "addresses")]), pl.concat([web_rejects, sap_rejects])

    def _web_addresses(self, since: Since) -> Frames:
        raw = self._q(
            'SELECT a."AddressId", a."CustomerId", a."AddressType", a."IsDefault", a."Street", a."Street2", '
            f'a."City", a."Zip", a."State", a."Country", {self.source.text("a", "UpdatedAt")}, '
            'c."CustomerId" AS "OwnerId" '
            'FROM "FP_ADDRESS" a LEFT JOIN "FP_CUSTOMER" c ON c."CustomerId" = a."CustomerId" '
            f'WHERE {self._fp_scope("a", since, "CustomerId", "web")} ORDER BY a."AddressId"',
            since,
        )
        key = pl.format("W{}:A{}", pl.col("CustomerId").cast(pl.String).fill_null("?"), pl.col("AddressId"))
        raw, reason = parse(raw, {"UpdatedAt": ("datetime", "UpdatedAt")}, self.source.zone)
        kind = pl.col("AddressType").cast(pl.String).str.strip_chars().str.to_lowercase()
        structural = (
            pl.when(pl.col("CustomerId").is_null())
            .then(pl.lit("address without a customer"))
            .when(pl.col("OwnerId").is_null())
            .then(pl.format("address of an unknown customer W{}", pl.col("CustomerId")))
            .when(~kind.is_in(["billing", "shipping"]) | kind.is_null())
            .then(pl.format("unknown AddressType {}", pl.col("AddressType").cast(pl.String).fill_null("NULL")))
        )
        reason = _first_reason(raw, structural, reason)
        raw, rejects = split_rejects(raw, reason, "addresses", key)
        frame = raw.select(
            key.alias("address_key"),
            _key("W", "CustomerId").alias("owner_key"),
            pl.lit("web").alias("source"),
            kind.alias("address_type"),
            _bool("IsDefault").fill_null(False).alias("is_default"),
            pl.col("Street").alias("street"),
            pl.col("Street2").alias("street2"),
            pl.col("City").alias("city"),
            pl.col("Zip").alias("zip"),
            pl.col("State").alias("state"),
            _country().alias("country"),
            pl.col("UpdatedAt").alias("updated_at"),
        )
        return frame, rejects

    def _sap_addresses(self, since: Since) -> Frames:
        """CRD1 rows follow their partner's change marker (SAP saves addresses through the partner)."""
        raw = self._q(
            'SELECT r."CardCode", r."Address", r."AdresType", r."Street", r."Block", r."City", r."ZipCode", '
            f'r."State", r."Country", p."BillToDef", p."ShipToDef", '
            f'{self.source.text("p", "UpdateDate")}, p."UpdateTS" '
            'FROM "CRD1" r JOIN "OCRD" p ON p."CardCode" = r."CardCode" '
            f'WHERE p."CardType" = \'C\' AND {self._partner_scope("p", since)} '
            'ORDER BY r."CardCode", r."AdresType", r."Address"',
            since,
        )
        kind = pl.col("AdresType").cast(pl.String).str.strip_chars().str.to_uppercase()
        key = pl.format("BP{}:{}:{}", pl.col("CardCode"), kind, pl.col("Address"))
        raw, reason = parse(raw, {"UpdateDate": ("day", "UpdateDate")})
        unknown = pl.when(~kind.is_in(["B", "S"])).then(pl.format("unknown AdresType {}", pl.col("AdresType")))
        reason = _first_reason(raw, unknown, reason)
        raw, rejects = split_rejects(raw, reason, "addresses", key)
        default = pl.when(kind == "B").then(pl.col("BillToDef")).otherwise(pl.col("ShipToDef"))
        frame = raw.select(
            key.alias("address_key"),
            _key("BP", "CardCode").alias("owner_key"),
            pl.lit("sap").alias("source"),
            pl.when(kind == "B").then(pl.lit("billing")).otherwise(pl.lit("shipping")).alias("address_type"),
            (default == pl.col("Address")).fill_null(False).alias("is_default"),
            pl.col("Street").alias("street"),
            pl.col("Block").alias("street2"),
            pl.col("City").alias("city"),
            pl.col("ZipCode").alias("zip"),
            pl.col("State").alias("state"),
            _country().alias("country"),
            self._stamp().alias("updated_at"),
        )
        return frame, rejects

    # -- items ----------------------------------------------------------------------------------------------

    def _changed_items(self, column: str, since: Since) -> str:
        """Items changed themselves (OITM, which a price change saves too) or through a combination."""
        if since is None:
            return "1=1"
        if isinstance(since, Keys):
            return self.source.in_keys(column, "items")
        return (
            f'{column} IN (SELECT i2."ItemCode" FROM "OITM" i2 WHERE {self.source.sap_changed("i2", since)} '
            'UNION SELECT c2."ItemCode" FROM "FP_ITEM_COMBINATION" c2 WHERE c2."UpdatedAt" >= :since)'
        )

    def _items(self, since: Since) -> Frames:
        t = self.source.text
        item_scope = self._changed_items('i."ItemCode"', since)
        combo_scope = self._changed_items('c."ItemCode"', since)
        items = self._q(
            'SELECT i."ItemCode", i."ItemName", i."UserText", i."validFor", i."frozenFor", '
            f'{t("i", "UpdateDate")}, i."UpdateTS", s."StoreId", s."Currency" AS "StoreCurrency", '
            f'COALESCE(s."PriceList", {SAP_PRICE_LIST}) AS "PriceList", {t("p", "Price")}, '
            'p."Currency" '
            'FROM "OITM" i '
            'LEFT JOIN (SELECT "ItemCode", MIN("StoreId") AS "Home" FROM "FP_ITEM_STORE" GROUP BY "ItemCode") h '
            'ON h."ItemCode" = i."ItemCode" '
            'LEFT JOIN "FP_STORE" s ON s."StoreId" = h."Home" '
            f'LEFT JOIN "ITM1" p ON p."ItemCode" = i."ItemCode" AND p."PriceList" = COALESCE(s."PriceList", {SAP_PRICE_LIST}) '
            f'WHERE {item_scope} ORDER BY i."ItemCode"',
            since,
        )
        combos = self._q(
            'SELECT c."CombinationId", c."ItemCode", c."Sku", c."Attributes", '
            f'{t("c", "PriceDelta")}, {t("c", "UpdatedAt")}, '
            'i."ItemCode" AS "Known" '
            'FROM "FP_ITEM_COMBINATION" c LEFT JOIN "OITM" i ON i."ItemCode" = c."ItemCode" '
            f'WHERE {combo_scope} ORDER BY c."ItemCode", c."CombinationId"',
            since,
        )
        items, reason = parse(items, {"UpdateDate": ("day", "UpdateDate"), "Price": ("float", "Price")})
        items, item_rejects = split_rejects(items, reason, "items", _key("I", "ItemCode"))
        combo_key = pl.format("I{}#{}", pl.col("ItemCode").cast(pl.String).fill_null("?"), pl.col("CombinationId"))
        orphans = combos.filter(pl.col("Known").is_null())
        combos, reason = parse(
            combos.filter(pl.col("Known").is_not_null()),
            {"PriceDelta": ("float", "PriceDelta"), "UpdatedAt": ("datetime", "UpdatedAt")},
            self.source.zone,
        )
        combos, combo_rejects = split_rejects(combos, reason, "items", combo_key)
        # combinations of an item rejected above go with it
        combos, follow = self._drop_with(combos, item_rejects, "ItemCode", combo_key, "item rejected")
        rejects = [item_rejects, _reject_rows(orphans, "items", combo_key, "combination of an unknown item"),
                   combo_rejects, follow]  # fmt: skip
        items = items.with_columns(
            self._stamp().alias("__updated"),
            pl.col("ItemCode").is_in(combos["ItemCode"].implode()).alias("__has"),
            (_flag("validFor") & ~_flag("frozenFor")).fill_null(False).alias("__active"),
            pl.coalesce(pl.col("Currency"), pl.col("StoreCurrency")).alias("__currency"),
        )
        base = items.select(
            _key("I", "ItemCode").alias("product_key"),
            pl.col("ItemCode").alias("item_code"),
            pl.col("ItemName").alias("name"),
            pl.col("ItemCode").alias("sku"),
            pl.col("UserText").alias("description"),
            pl.col("Price").alias("price"),
            pl.col("__currency").alias("currency"),
            pl.col("StoreId").cast(pl.String).alias("store_id"),
            pl.col("__has").alias("has_combinations"),
            pl.col("__active").alias("active"),
            pl.col("__updated").alias("updated_at"),
        )
        variants = combos.join(items, on="ItemCode", how="inner").select(
            combo_key.alias("product_key"),
            pl.col("ItemCode").alias("item_code"),
            pl.col("CombinationId").cast(pl.String).alias("combination_id"),
            pl.col("ItemName").alias("name"),
            pl.col("Attributes").alias("attributes"),
            pl.col("Sku").alias("sku"),
            pl.col("UserText").alias("description"),
            (pl.col("Price") + pl.col("PriceDelta").fill_null(0.0)).round(2).alias("price"),
            pl.col("__currency").alias("currency"),
            pl.col("StoreId").cast(pl.String).alias("store_id"),
            pl.lit(True).alias("has_combinations"),
            pl.col("__active").alias("active"),
            pl.max_horizontal("__updated", "UpdatedAt").alias("updated_at"),
        )
        frame = pl.concat([conform(base, "items"), conform(variants, "items")]).sort("item_code", "combination_id",
                                                                                     nulls_last=False)  # fmt: skip
        return frame, pl.concat(rejects)

    @staticmethod
    def _drop_with(rows: pl.DataFrame, rejected: pl.DataFrame, column: str, key: pl.Expr, reason: str) -> Frames:
        """Rows whose parent (``column`` = parent key minus its prefix letter) was rejected are rejected too."""
        parents = rejected["source_key"].str.slice(1)
        gone = pl.col(column).cast(pl.String).is_in(parents.implode())
        return rows.filter(~gone), _reject_rows(rows.filter(gone), "items", key, reason)

    # -- orders ---------------------------------------------------------------------------------------------

    def changed_order_keys(self, since: datetime) -> frozenset[int]:
        """The orders changed since ``since``: themselves, through one of their deliveries or invoices, or
        through their cart — a cart and its order are one deal, so an order counts as changed when its cart
        changed (either side of the link may be written late) and the deal is always mapped from both.
        One query, each branch driven by its own marker or link index."""
        s = self.source

        def via(head: str, body: str) -> str:
            return (
                f'SELECT l."BaseEntry" FROM "{head}" d JOIN "{body}" l ON l."DocEntry" = d."DocEntry" '
                f'WHERE {s.sap_changed("d", since)} AND l."BaseType" = {ORDER_OBJECT_TYPE}'
            )

        cart = s.fp_changed("pc", since)
        changed = (
            f'SELECT o2."DocEntry" FROM "ORDR" o2 WHERE {s.sap_changed("o2", since)} '
            f'UNION {via("ODLN", "DLN1")} UNION {via("OINV", "INV1")} '
            f'UNION SELECT o3."DocEntry" FROM "FP_CART" pc JOIN "ORDR" o3 ON o3."U_FP_CartId" = pc."CartId" WHERE {cart} '
            f'UNION SELECT pc."OrderDocEntry" FROM "FP_CART" pc WHERE {cart}'
        )
        return self._int_keys(
            f'SELECT o."DocEntry" AS k FROM "ORDR" o WHERE o."DocEntry" IN ({changed})', s.since_params(since)
        )

    def changed_cart_keys(self, since: datetime, orders: frozenset[int] | None = None) -> frozenset[int]:
        """The carts changed since ``since``: themselves, or through their order (``changed_order_keys``,
        ``orders`` when already known for this ``since``)."""
        s = self.source
        orders = self.changed_order_keys(since) if orders is None else orders
        ordered, its_cart = s.in_keys('c3."OrderDocEntry"', "orders"), s.in_keys('o."DocEntry"', "orders")
        changed = (
            f'SELECT c2."CartId" FROM "FP_CART" c2 WHERE {s.fp_changed("c2", since)} '
            f'UNION SELECT c3."CartId" FROM "FP_CART" c3 WHERE {ordered} '
            f'UNION SELECT o."U_FP_CartId" FROM "ORDR" o WHERE {its_cart}'
        )
        return self._int_keys(
            f'SELECT c."CartId" AS k FROM "FP_CART" c WHERE c."CartId" IN ({changed})',
            s.since_params(since) | {"orders": s.keys_param(orders)},
        )

    def deal_keys(self, orders_since: datetime, carts_since: datetime) -> DealKeys:
        """The orders and carts incremental reads with these windows cover (see ``changed_order_keys``)."""
        orders = self.changed_order_keys(orders_since)
        same = orders if carts_since == orders_since else None
        return DealKeys(orders, self.changed_cart_keys(carts_since, same))

    def _int_keys(self, sql: str, params: dict[str, object]) -> frozenset[int]:
        return frozenset(int(k) for k in self.source.query(sql, params)["k"].drop_nulls().to_list())

    def _documents(
        self, table: str, key: str, keys: frozenset[int] | None, read: Callable[[Scope, dict[str, object]], Frames]
    ) -> Frames:
        """``read`` (orders or carts) of the documents ``keys`` names, or of every document when None: then in
        slices of ``full_read_slice`` keys (``FULL_READ_SLICE``). The first and last slices are open-ended, so
        a line whose document is missing is read (and rejected) as it is by a one-piece read."""
        if keys is not None:
            return read(lambda alias, column: self.source.in_keys(f'{alias}."{column}"', "keys"),
                        {"keys": self.source.keys_param(keys)})  # fmt: skip
        every = self.source.query(f'SELECT "{key}" AS k FROM "{table}" ORDER BY "{key}"')["k"].cast(pl.Int64)
        bounds = every.gather_every(self.full_read_slice).to_list()[1:]
        del every
        frames, rejects = [], []
        for lo, hi in zip([None, *bounds], [*bounds, None], strict=True):

            def in_slice(alias: str, column: str, lo: int | None = lo, hi: int | None = hi) -> str:
                ends = ([f'{alias}."{column}" >= :lo'] if lo is not None else []) + (
                    [f'{alias}."{column}" < :hi'] if hi is not None else []
                )
                return " AND ".join(ends) or "1=1"

            frame, rejected = read(in_slice, {"lo": lo, "hi": hi})
            frames.append(frame)
            rejects.append(rejected)
        # rechunk=False: copying the slices into one chunk would hold the result twice
        return pl.concat(frames, rechunk=False), pl.concat(rejects)

    def _orders(self, since: datetime | None) -> Frames:
        keys = None if since is None else self.changed_order_keys(since)
        return self._documents("ORDR", "DocEntry", keys, self._orders_in)

    def _orders_in(self, in_scope: Scope, params: dict[str, object]) -> Frames:
        t = self.source.text
        query = self.source.query
        heads = query(
            'SELECT o."DocEntry", o."DocNum", o."CardCode", o."DocCur", o."DocStatus", o."CANCELED", '
            f'o."U_FP_CartId", o."U_FP_StoreId", {t("o", "DocTotal")}, '
            f'{t("o", "DocDate")}, {t("o", "UpdateDate")}, o."UpdateTS", '
            'c."CustomerId" '
            'FROM "ORDR" o LEFT JOIN "FP_CART" c ON c."CartId" = o."U_FP_CartId" '
            f'WHERE {in_scope("o", "DocEntry")} ORDER BY o."DocEntry"',
            params,
        )
        lines = query(
            'SELECT l."DocEntry", l."LineNum", l."ItemCode", l."U_FP_CombinationId", l."Dscription", '
            f'{t("l", "Quantity")}, {t("l", "Price")} '
            f'FROM "RDR1" l WHERE {in_scope("l", "DocEntry")} ORDER BY l."DocEntry", l."LineNum"',
            params,
        )
        key = _key("O", "DocEntry")
        heads, reason = parse(
            heads,
            {"DocDate": ("day", "DocDate"), "DocTotal": ("float", "DocTotal"), "UpdateDate": ("day", "UpdateDate")},
        )
        no_card = pl.when(pl.col("CardCode").is_null()).then(pl.lit("order without a business partner (CardCode)"))
        reason = _first_reason(heads, no_card, reason)
        heads, rejects = split_rejects(heads, reason, "orders", key)
        lines, line_rejects = self._lines(lines, "DocEntry", "orders", "O")
        heads = self._without(heads, line_rejects, "DocEntry")
        progress = self._order_progress(in_scope("l", "BaseEntry"), params)
        nested = _nest(
            lines,
            "DocEntry",
            ORDER_LINE,
            {
                "line_num": pl.col("LineNum"),
                "item_code": pl.col("ItemCode"),
                "combination_id": pl.col("U_FP_CombinationId").cast(pl.String),
                "description": pl.col("Dscription"),
                "quantity": pl.col("Quantity"),
                "price": pl.col("Price"),
            },
            (pl.col("Quantity") * pl.col("Price")).sum().alias("lines_total"),
        )
        shipped = self._shipment(lines, progress["delivered"])
        orders = (
            heads.join(nested, on="DocEntry", how="left")
            .join(shipped, on="DocEntry", how="left")
            .join(progress["invoiced"], on="DocEntry", how="left")
            .join(progress["delivery_stamp"], on="DocEntry", how="left")
        )
        frame = orders.select(
            key.alias("order_key"),
            pl.col("DocEntry").cast(pl.Int64).alias("doc_entry"),
            pl.col("DocNum").cast(pl.Int64).alias("doc_num"),
            pl.col("CardCode").alias("card_code"),
            _key("W", "CustomerId").alias("web_customer_key"),
            _key("C", "U_FP_CartId").alias("cart_key"),
            pl.col("U_FP_StoreId").cast(pl.String).alias("store_id"),
            pl.col("DocDate").alias("doc_date"),
            pl.col("DocTotal").alias("total"),
            pl.col("DocCur").alias("currency"),
            pl.when(_flag("CANCELED"))
            .then(pl.lit("canceled"))
            .when(~_flag("CANCELED", "N").fill_null(True))
            .then(pl.lit(UNKNOWN_STATUS))  # neither Y nor N: SAP never writes that; say so, don't guess
            .when(_flag("DocStatus", "C"))
            .then(pl.lit("closed"))
            .when(_flag("DocStatus", "O"))
            .then(pl.lit("open"))
            .otherwise(pl.lit(UNKNOWN_STATUS))
            .alias("order_status"),
            pl.col("shipment_status").fill_null("not_shipped"),
            self._payment_status().alias("payment_status"),
            pl.max_horizontal(self._stamp(), pl.col("delivered_at"), pl.col("invoiced_at")).alias("updated_at"),
            pl.col("lines_total").fill_null(0.0),
            pl.col("lines").fill_null(pl.lit([], dtype=pl.List(ORDER_LINE))),
        )
        return frame, pl.concat([rejects, line_rejects.unique(subset="source_key", keep="first", maintain_order=True)])

    def _lines(self, lines: pl.DataFrame, owner: str, entity: str, prefix: str) -> Frames:
        """Parse line quantities/prices; a line that cannot be read makes its whole document a reject."""
        lines, reason = parse(lines, {"Quantity": ("float", "Quantity"), "Price": ("float", "Price")})
        no_item = pl.when(pl.col("ItemCode").is_null()).then(pl.lit("ItemCode is missing"))
        reason = _first_reason(lines, no_item, reason)
        with_line = lines.select(
            pl.when(pl.lit(reason).is_not_null()).then(pl.format("line {}: {}", pl.col("LineNum"), pl.lit(reason)))
        ).to_series()
        return split_rejects(lines, with_line, entity, _key(prefix, owner))

    @staticmethod
    def _without(heads: pl.DataFrame, line_rejects: pl.DataFrame, owner: str) -> pl.DataFrame:
        """Drop documents that have a rejected line (the line rejects already name them)."""
        bad = line_rejects["source_key"].str.slice(1).cast(pl.Int64, strict=False)
        return heads.filter(~pl.col(owner).cast(pl.Int64).is_in(bad.implode()))

    def _order_progress(self, scope: str, params: dict[str, object]) -> dict[str, pl.DataFrame]:
        """Delivered quantities per order line, paid totals per order, and when each last changed (of the
        orders ``scope`` selects by ``l."BaseEntry"``, with its bound ``params``)."""
        t, query = self.source.text, self.source.query

        def docs(head: str, body: str, columns: str) -> pl.DataFrame:
            raw = query(
                f'SELECT DISTINCT l."BaseEntry", d."DocEntry" AS "Doc", {columns}, '
                f'{t("d", "UpdateDate")}, d."UpdateTS" '
                f'FROM "{body}" l JOIN "{head}" d ON d."DocEntry" = l."DocEntry" '
                f'WHERE l."BaseType" = {ORDER_OBJECT_TYPE} AND COALESCE(d."CANCELED", \'N\') <> \'Y\' AND {scope}',
                params,
            )
            specs: dict[str, tuple[str, str]] = {c: ("float", c) for c in ("DocTotal", "PaidToDate") if c in raw.columns}
            raw, _ = parse(raw, {**specs, "UpdateDate": ("day", "UpdateDate")})
            return raw.with_columns(self._stamp().alias("stamp"))

        deliveries = docs("ODLN", "DLN1", t("d", "DocTotal"))
        invoices = docs("OINV", "INV1", f'{t("d", "DocTotal")}, {t("d", "PaidToDate")}')
        delivered = query(
            'SELECT l."BaseEntry", l."BaseLine", SUM(l."Quantity") AS "Delivered" '
            'FROM "DLN1" l JOIN "ODLN" d ON d."DocEntry" = l."DocEntry" '
            f'WHERE l."BaseType" = {ORDER_OBJECT_TYPE} AND COALESCE(d."CANCELED", \'N\') <> \'Y\' AND {scope} '
            'GROUP BY l."BaseEntry", l."BaseLine"',
            params,
        )
        entry = pl.col("BaseEntry").cast(pl.Int64).alias("DocEntry")
        return {
            "delivered": delivered.select(
                entry, pl.col("BaseLine").cast(pl.Int64), pl.col("Delivered").cast(pl.Float64, strict=False)
            ),
            "delivery_stamp": deliveries.group_by(entry).agg(pl.col("stamp").max().alias("delivered_at")),
            "invoiced": invoices.group_by(entry).agg(
                pl.col("PaidToDate").fill_null(0.0).sum().alias("paid"),
                pl.col("stamp").max().alias("invoiced_at"),
            ),
        }

    @staticmethod
    def _shipment(lines: pl.DataFrame, delivered: pl.DataFrame) -> pl.DataFrame:
        """Per order: delivered quantity per line (capped at the ordered one) summed against the ordered total."""
        per_line = lines.select(
            pl.col("DocEntry").cast(pl.Int64), pl.col("LineNum").cast(pl.Int64).alias("BaseLine"), "Quantity"
        ).join(delivered, on=["DocEntry", "BaseLine"], how="left")
        capped = pl.min_horizontal(pl.col("Delivered").fill_null(0.0), pl.col("Quantity"))
        sums = per_line.group_by("DocEntry").agg(capped.sum().alias("done"), pl.col("Quantity").sum().alias("all"))
        return sums.select(
            "DocEntry",
            pl.when(pl.col("done") <= 0)
            .then(pl.lit("not_shipped"))
            .when(pl.col("done") >= pl.col("all") - 1e-9)
            .then(pl.lit("shipped"))
            .otherwise(pl.lit("partially_shipped"))
            .alias("shipment_status"),
        )

    @staticmethod
    def _payment_status() -> pl.Expr:
        """Paid-to-date of the order's invoices (INV1 based on the order) against the order total (an empty
        DocTotal: against the sum of its lines, so a missing total never reads as partly paid)."""
        paid = pl.col("paid").fill_null(0.0)
        return (
            pl.when(paid <= 0)
            .then(pl.lit("unpaid"))
            .when(paid >= pl.coalesce(pl.col("DocTotal"), pl.col("lines_total").fill_null(0.0)) - PAID_TOLERANCE)
            .then(pl.lit("paid"))
            .otherwise(pl.lit("partially_paid"))
        )

    # -- carts ----------------------------------------------------------------------------------------------

    def _carts(self, since: datetime | None) -> Frames:
        keys = None if since is None else self.changed_cart_keys(since)
        return self._documents("FP_CART", "CartId", keys, self._carts_in)

    def _carts_in(self, in_scope: Scope, params: dict[str, object]) -> Frames:
        t, query = self.source.text, self.source.query
        heads = query(
            'SELECT c."CartId", c."StoreId", c."CustomerId", c."Email", c."Status", c."OrderDocEntry", '
            f'{t("c", "CreatedAt")}, {t("c", "UpdatedAt")}, s."Currency" '
            'FROM "FP_CART" c LEFT JOIN "FP_STORE" s ON s."StoreId" = c."StoreId" '
            f'WHERE {in_scope("c", "CartId")} ORDER BY c."CartId"',
            params,
        )
        lines = query(
            'SELECT l."CartId", l."LineNum", l."ItemCode", l."CombinationId", '
            f'{t("l", "Quantity")}, {t("l", "Price")} '
            f'FROM "FP_CART_LINE" l WHERE {in_scope("l", "CartId")} ORDER BY l."CartId", l."LineNum"',
            params,
        )
        key = _key("C", "CartId")
        heads, reason = parse(heads, {"CreatedAt": ("datetime", "CreatedAt"), "UpdatedAt": ("datetime", "UpdatedAt")},
                              self.source.zone)
        status = pl.col("Status").cast(pl.String).str.strip_chars().str.to_lowercase()
        structural = (
            pl.when(pl.col("CustomerId").is_null())
            .then(pl.lit("cart without a customer"))
            .when(~status.is_in(["open", "ordered"]) | status.is_null())
            .then(pl.format("unknown cart Status {}", pl.col("Status").cast(pl.String).fill_null("NULL")))
        )
        reason = _first_reason(heads, structural, reason)
        heads, rejects = split_rejects(heads, reason, "carts", key)
        lines, line_rejects = self._lines(lines, "CartId", "carts", "C")
        heads = self._without(heads, line_rejects, "CartId")
        nested = _nest(
            lines.with_columns(pl.col("CartId").cast(pl.Int64)),
            "CartId",
            CART_LINE,
            {
                "line_num": pl.col("LineNum"),
                "item_code": pl.col("ItemCode"),
                "combination_id": pl.col("CombinationId").cast(pl.String),
                "quantity": pl.col("Quantity"),
                "price": pl.col("Price"),
            },
        )
        totals = lines.group_by(pl.col("CartId").cast(pl.Int64)).agg(
            (pl.col("Quantity") * pl.col("Price")).sum().round(2).alias("total")
        )
        carts = heads.with_columns(pl.col("CartId").cast(pl.Int64)).join(nested, on="CartId", how="left").join(
            totals, on="CartId", how="left"
        )
        ordered = status == "ordered"
        frame = carts.select(
            key.alias("cart_key"),
            pl.col("CartId").alias("cart_id"),
            pl.col("StoreId").cast(pl.String).alias("store_id"),
            _key("W", "CustomerId").alias("customer_key"),
            pl.col("Email").alias("email"),
            status.alias("status"),
            pl.when(ordered & pl.col("OrderDocEntry").is_not_null()).then(_key("O", "OrderDocEntry")).alias("order_key"),
            pl.col("total").fill_null(0.0),
            pl.col("Currency").alias("currency"),
            pl.col("CreatedAt").alias("created_at"),
            pl.col("UpdatedAt").alias("updated_at"),
            pl.col("lines").fill_null(pl.lit([], dtype=pl.List(CART_LINE))),
        )
        return frame, pl.concat([rejects, line_rejects.unique(subset="source_key", keep="first", maintain_order=True)])

    # -- change markers -------------------------------------------------------------------------------------

    def max_updated_at(self, entity: str) -> datetime | None:
        """The newest change marker among the tables whose changes a read of ``entity`` covers (None for
        stores: no marker; orders and carts: both sides of the deal, ``WINDOW_TABLES``). Markers beyond
        ``marker_horizon()`` are left out (see ``future_markers``)."""
        if entity not in WINDOW_TABLES:
            raise ValueError(f"unknown entity {entity!r}; one of {', '.join(ENTITIES)}")
        horizon = marker_horizon()
        stamps = [self._fp_max(table, horizon) if kind == "fp" else self._sap_max(table, horizon)
                  for kind, table in WINDOW_TABLES[entity]]  # fmt: skip
        found = [s for s in stamps if s is not None]
        return max(found) if found else None

    def future_markers(self, entity: str, limit: int = 20) -> list[str]:
        """``table:key`` of rows whose change marker lies beyond ``marker_horizon()`` (at most ``limit``)."""
        horizon = marker_horizon()
        found: list[str] = []
        for kind, table in MARKER_TABLES[entity]:
            column = 't."UpdatedAt"' if kind == "fp" else 't."UpdateDate"'
            bound = self._bound("h", horizon, upper=True) if kind == "fp" else self._day_bound(horizon)
            raw = self.source.query(
                f'SELECT t."{_MARKER_KEYS[table]}" AS k FROM "{table}" t '
                f"WHERE {self.source.well_formed(column)} AND {column} > :h LIMIT {int(limit)}",
                bound,
            )
            found += [f"{table}:{k}" for k in raw["k"].cast(pl.String).to_list()]
        return found[:limit]

    def _fp_max(self, table: str, horizon: datetime) -> datetime | None:
        ok = self.source.well_formed('t."UpdatedAt"')
        raw = self.source.query(f'SELECT MAX(t."UpdatedAt") AS m FROM "{table}" t WHERE {ok} AND t."UpdatedAt" <= :h',
                                self._bound("h", horizon, upper=True))
        return max_stamp(raw.select(as_datetime(pl.col("m"), raw.schema["m"], self.source.zone)))

    def _sap_max(self, table: str, horizon: datetime) -> datetime | None:
        customers_only = ' AND t."CardType" = \'C\'' if table == "OCRD" else ""
        ok = self.source.well_formed('t."UpdateDate"')
        raw = self.source.query(
            f'SELECT t."UpdateDate" AS d, MAX(t."UpdateTS") AS ts FROM "{table}" t '
            f'WHERE t."UpdateDate" = (SELECT MAX(t."UpdateDate") FROM "{table}" t WHERE {ok}{customers_only} '
            'AND t."UpdateDate" <= :h)'
            f'{customers_only} GROUP BY t."UpdateDate"',
            self._day_bound(horizon),
        )
        if raw.is_empty():
            return None
        return max_stamp(raw.select(sap_stamp(as_datetime(pl.col("d"), raw.schema["d"]), pl.col("ts"), self.source.zone)))

    # -- cart probes for sensor ticks: index range scans on FP_CART.UpdatedAt, never a full read -------------

    def _cart_filter(self, open_only: bool) -> str:
        ok = self.source.well_formed('t."UpdatedAt"')
        return ok + (' AND LOWER(TRIM(t."Status")) = \'open\'' if open_only else "")

    def _bound(self, name: str, moment: datetime, upper: bool = False) -> dict[str, object]:
        return {name: self.source.since_params(moment, upper)["since"]}

    def _day_bound(self, horizon: datetime) -> dict[str, object]:
        """``:h``: the source day of the latest marker believed (``marker_horizon``)."""
        return {"h": self.source.since_params(horizon, upper=True)["since_day"]}

    def _stamp(self) -> pl.Expr:
        """``UpdateDate`` + ``UpdateTS`` of a SAP row, as UTC."""
        return sap_stamp(pl.col("UpdateDate"), pl.col("UpdateTS"), self.source.zone)

    def newest_cart_change(self, until: datetime | None = None, open_only: bool = False) -> datetime | None:
        """The newest cart change marker (at or before ``until``; only open carts if ``open_only``). Walks the
        UpdatedAt index from its end and stops at the first match, so it costs the same on a million carts."""
        until = min(until, marker_horizon()) if until is not None else marker_horizon()
        upper, params = ' AND t."UpdatedAt" <= :until', self._bound("until", until, upper=True)
        raw = self.source.query(
            f'SELECT t."UpdatedAt" AS m FROM "FP_CART" t WHERE {self._cart_filter(open_only)}{upper} '
            'ORDER BY t."UpdatedAt" DESC LIMIT 1',
            params,
        )
        return max_stamp(raw.select(as_datetime(pl.col("m"), raw.schema["m"], self.source.zone))) if raw.height else None

    def cart_changes(
        self, after: datetime, until: datetime | None = None, open_only: bool = False
    ) -> tuple[int, datetime | None]:
        """(how many carts last changed strictly after ``after`` and at or before ``until``, the newest of
        their markers). Reads only that range of the UpdatedAt index: a tick's cost follows the carts that
        changed since the last tick, not the size of the table."""
        until = min(until, marker_horizon()) if until is not None else marker_horizon()
        upper, params = ' AND t."UpdatedAt" <= :until', self._bound("after", after) | self._bound("until", until, upper=True)
        raw = self.source.query(
            f'SELECT COUNT(*) AS n, MAX(t."UpdatedAt") AS m FROM "FP_CART" t '
            f'WHERE t."UpdatedAt" > :after{upper} AND {self._cart_filter(open_only)}',
            params,
        )
        count = int(raw["n"][0] or 0)
        newest = max_stamp(raw.select(as_datetime(pl.col("m"), raw.schema["m"], self.source.zone))) if count else None
        return count, newest
