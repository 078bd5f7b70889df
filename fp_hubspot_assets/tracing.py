"""One record's whole story, for ``fp-hubspot trace`` and the tracing page: its SAP/FocusPoint source rows,
the payload the mapping computes for it now, its HubSpot id and a link to it, its associations and every
integration-log row about it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from fp_hubspot_assets import mapping
from fp_hubspot_assets.objects import COMMERCE_TYPES, synced_types
from fp_hubspot_assets.panel import PanelSettings
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state.queries import LogQuery, associations_of, mapping_of, search_log
from fp_hubspot_assets.state.store import StateStore

PORTAL_ID_ENV = "FP_HUBSPOT_PORTAL_ID"
TRACING_URL_ENV = "FP_TRACING_URL"  # where the tracing page is served (`fp-hubspot tracing-page`)
DEFAULT_TRACING_URL = "http://127.0.0.1:3001"
# HubSpot's object type ids, as its app URLs use them (https://app.hubspot.com/contacts/<portal>/record/<id>/…)
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "products": "0-7", "line_items": "0-8",
                   "orders": "0-123", "carts": "0-142"}
TRACED_TYPES = ("contacts", "companies", "products", "deals", "line_items", "orders", "carts")
ENTITIES = ("stores", "customers", "addresses", "items", "orders", "carts")
_LINE_KEY = re.compile(r"^(.*):L[^:]*$")  # "<deal key>:L<line>": a line item's key names its deal
# "order/O7:L1" / "cart/C3:L1": the line of an order or cart names it behind its prefix (COMMERCE_LINE_PREFIX)
_COMMERCE_LINE_PARENT = re.compile(r"^(?:order|cart)/")


@dataclass
class Trace:
    key: str
    mappings: list[dict[str, Any]] = field(default_factory=list)  # object_type, hubspot_id, url, synced_at, run_id
    associations: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)  # newest first
    source: list[dict[str, Any]] = field(default_factory=list)  # {"entity": …, "row": {…}}
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)  # object_type -> {"record", "issues"}

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "hubspot": self.mappings,
            "associations": self.associations,
            "payloads": self.payloads,
            "source": self.source,
            "log": self.log,
        }


def tracing_page_url(path: str = "") -> str:
    """The tracing page's address (``$FP_TRACING_URL``, default the local one that `make dev` starts)."""
    return (os.environ.get(TRACING_URL_ENV) or DEFAULT_TRACING_URL).rstrip("/") + path


def record_url(settings: PanelSettings, object_type: str, hubspot_id: str) -> str | None:
    """The record in HubSpot's app: portal id ($FP_HUBSPOT_PORTAL_ID) and the panel's region give the host.
    Against a sandbox (panel ``base_url``), its inspection route for that record. None: portal id unknown."""
    integration = settings.integration
    if integration.base_url:
        return f"{integration.base_url}/_sandbox/objects/{object_type}?id={hubspot_id}"
    portal = os.environ.get(PORTAL_ID_ENV, "").strip()
    if not portal or object_type not in OBJECT_TYPE_IDS:
        return None
    host = "https://app-eu1.hubspot.com" if integration.region == "eu1" else "https://app.hubspot.com"
    return f"{host}/contacts/{portal}/record/{OBJECT_TYPE_IDS[object_type]}/{hubspot_id}"


def traced_types(settings: PanelSettings) -> tuple[str, ...]:
    """The object types the tracing views show: every type, HubSpot's orders and carts only when the panel's
    ``commerce.objects`` syncs them."""
    synced = synced_types(settings.commerce.objects)
    return tuple(t for t in TRACED_TYPES if t not in COMMERCE_TYPES or t in synced)


def read_sources(reader: SapReader) -> dict[str, pl.DataFrame]:
    return {entity: reader.read(entity).frame for entity in ENTITIES}


def compute_payloads(frames: dict[str, pl.DataFrame], settings: PanelSettings) -> dict[str, mapping.Mapped]:
    """The payloads the mapping computes now, as the mapping assets do (same functions, same inputs)."""
    return dict(iter_payloads(dict(frames), settings))


def iter_payloads(frames: dict[str, pl.DataFrame], settings: PanelSettings) -> Iterator[tuple[str, mapping.Mapped]]:
    """Each type's payloads in the job's order, mapped as its asset maps them. Like the job's steps, it holds only
    what a later step still needs: a source frame is popped from ``frames`` (the caller's dict) after its last
    mapping, and a payload is released once no later mapping reads it, so a caller that drops each yielded
    payload holds one type at a time (``bench/million_rows.py`` at 1M customers)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    stores = frames.pop("stores")
    products = mapping.map_products(frames.pop("items"), stores, settings)
    yield "products", products
    customers, addresses = frames.pop("customers"), frames.pop("addresses")
    companies = mapping.map_companies(customers, addresses, settings)
    yield "companies", companies
    contacts = mapping.map_contacts(customers, addresses, settings)
    yield "contacts", contacts
    orders_frame, carts_frame = frames.pop("orders"), frames.pop("carts")
    deals = mapping.map_deals(orders_frame, carts_frame, customers, contacts, companies, settings, now)
    yield "deals", deals
    orders = mapping.map_orders(
        orders_frame, carts_frame, customers, addresses, stores, contacts, companies, settings, now, deals
    )
    del addresses
    yield "orders", orders
    carts = mapping.map_carts(orders_frame, carts_frame, customers, stores, contacts, companies, orders, settings, now)
    del customers, stores, contacts, companies
    yield "carts", carts
    line_items = mapping.map_line_items(
        orders_frame, carts_frame, products, settings, deals=deals, order_records=orders, cart_records=carts
    )
    del orders_frame, carts_frame, products, deals, orders, carts
    yield "line_items", line_items


def source_rows(frames: dict[str, pl.DataFrame], key: str) -> list[dict[str, Any]]:
    """Rows of every source entity whose key columns hold ``key`` (or, for a line item, its deal's key)."""
    wanted = {key}
    if match := _LINE_KEY.match(key):
        wanted.add(_COMMERCE_LINE_PARENT.sub("", match.group(1)))
    out: list[dict[str, Any]] = []
    for entity, frame in frames.items():
        columns = [c for c in frame.columns if c.endswith("_key") and frame.schema[c] == pl.String]
        if not columns:
            continue
        hits = frame.filter(pl.any_horizontal([pl.col(c).is_in(sorted(wanted)) for c in columns]))
        out.extend({"entity": entity, "row": row} for row in hits.head(20).iter_rows(named=True))
    return out


def trace(
    store: StateStore,
    key: str,
    settings: PanelSettings,
    frames: dict[str, pl.DataFrame] | None = None,
    log_limit: int = 1000,
) -> Trace:
    """Everything known about ``key``; without ``frames`` the source rows and payloads are left out."""
    result = Trace(key)
    for row in mapping_of(store, key).iter_rows(named=True):
        row["url"] = record_url(settings, row["object_type"], row["hubspot_id"])
        result.mappings.append(row)
    result.associations = associations_of(store, key)
    result.log = search_log(store, LogQuery(key=key), limit=log_limit).rows.to_dicts()
    if frames is not None:
        result.source = source_rows(frames, key)
        for object_type, mapped in compute_payloads(frames, settings).items():
            record = mapped.records.filter(pl.col("source_key") == key)
            issues = mapped.issues.filter(pl.col("source_key") == key)
            if record.height or issues.height:
                result.payloads[object_type] = {
                    "record": record.row(0, named=True) if record.height else None,
                    "issues": issues.to_dicts(),
                }
    return result


GRID_COLUMNS = ("source_key", "label", "email", "stage", "amount", "hubspot_id", "last_action", "last_at", "note")
_LABELS = ("dealname", "name", "hs_order_name", "hs_cart_name")  # the property that names a record, by object type
_AMOUNTS = ("amount", "price", "hs_total_price")
_STAGES = ("dealstage", "fp_order_stage", "hs_external_status")  # a deal's / order's stage, a cart's status


def _text_of(frame: pl.DataFrame, *names: str) -> pl.Expr:
    present = [n for n in names if n in frame.columns]
    return pl.col(present[0]).cast(pl.String) if present else pl.lit("")


def record_grid(store: StateStore, object_type: str, mapped: mapping.Mapped, customers: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per record of ``object_type``: every key the mapping has now (sent or skipped) and every key
    in the ID map, with its name, email, stage, amount, HubSpot id and last logged action. Columns:
    GRID_COLUMNS, all text but ``last_at``."""
    from fp_hubspot_assets.state.queries import last_actions

    records = mapped.records
    if "firstname" in records.columns:
        label = pl.concat_str([pl.col("firstname"), pl.col("lastname")], separator=" ", ignore_nulls=True).str.strip_chars()
    else:
        label = _text_of(records, *_LABELS)
    sent = records.select(
        "source_key",
        label.alias("label"),
        _text_of(records, "email").alias("email"),
        _text_of(records, *_STAGES).alias("stage"),
        _text_of(records, *_AMOUNTS).alias("amount"),
    )
    notes = mapped.issues.group_by("source_key", maintain_order=True).agg(pl.col("reason").str.join("; ").alias("note"))
    not_sent = notes.select("source_key").filter(~pl.col("source_key").is_in(sent["source_key"].implode()))
    blank = pl.lit("")
    not_sent = not_sent.select("source_key", *(blank.alias(c) for c in sent.columns[1:]))
    grid = pl.concat([sent, not_sent])
    if customers is not None and object_type in ("contacts", "companies"):
        # skipped people and e-mails not sent (invalid): support searches by what the source holds
        people = customers.select(
            pl.col("customer_key").alias("source_key"),
            pl.coalesce(
                pl.concat_str([pl.col("first_name"), pl.col("last_name")], separator=" ", ignore_nulls=True)
                .str.strip_chars().replace("", None),
                pl.col("company_name"),
            ).fill_null("").alias("source_label"),
            pl.col("email").fill_null("").alias("source_email"),
        ).unique("source_key", keep="first")
        grid = grid.join(people, on="source_key", how="left").with_columns(
            pl.when(pl.col("label") == "").then(pl.col("source_label")).otherwise(pl.col("label")).alias("label"),
            pl.when(pl.col("email") == "").then(pl.col("source_email")).otherwise(pl.col("email")).alias("email"),
        ).select(sent.columns)
    ids = store.id_map(object_type, with_hash=False)
    grid = grid.join(ids, on="source_key", how="full", coalesce=True)
    grid = grid.join(notes, on="source_key", how="left").join(last_actions(store, object_type), on="source_key", how="left")
    return grid.with_columns(pl.col(c).fill_null("") for c in GRID_COLUMNS if c != "last_at").select(GRID_COLUMNS)
