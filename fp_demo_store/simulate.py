"""Changes to a demo database as a live store would make them, for sensors, demos and tests.

Every helper stamps the change markers the incremental reader relies on: ``UpdatedAt`` on FocusPoint rows,
``UpdateDate`` + ``UpdateTS`` on the SAP object that owns the change (a contact person or an address is saved
through its business partner, a price through its item, a delivery or invoice bumps its order too).
All helpers use SQLAlchemy Core, so they work on SQLite and PostgreSQL alike; ``now`` defaults to the current
UTC time (naive, whole seconds).

Public helpers (each opens its own transaction):
- ``set_customer_email(url, customer_key, email)``   W<id> / BP<code> / CP<code>
- ``set_customer_address(url, customer_key, street=…, city=…, zip_code=…, country=…)``   default billing address
- ``set_item_price(url, item_code, price, price_list=None)``   the home store's price list by default
- ``add_cart(url, customer_id, lines, …) -> cart_id``   lines: ``CartLine`` or ``(item_code, quantity)`` tuples
- ``complete_cart(url, cart_id) -> doc_entry``   the cart becomes a sales order (U_FP_CartId links them)
- ``ship_order(url, doc_entry, partial=False) -> delivery DocEntry``
- ``pay_order(url, doc_entry, amount=None) -> invoice DocEntry``
- ``cancel_order(url, doc_entry)``
- ``simulate(url, seed, …) -> counts``   a random mix of all of the above
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np
import sqlalchemy as sa

from fp_hubspot_assets.sap.tables import (
    CRD1,
    DLN1,
    FP_ADDRESS,
    FP_CART,
    FP_CART_LINE,
    FP_CUSTOMER,
    FP_ITEM_COMBINATION,
    FP_ITEM_STORE,
    FP_STORE,
    INV1,
    ITM1,
    OCPR,
    OCRD,
    ODLN,
    OINV,
    OITM,
    ORDER_OBJECT_TYPE,
    ORDR,
    RDR1,
)

T = TypeVar("T")
SAP_PRICE_LIST = 1  # price list of SAP-only items and orders


@dataclass(frozen=True)
class CartLine:
    item_code: str
    quantity: float = 1.0
    combination_id: int | None = None
    price: float | None = None  # None: the store's price-list price plus the combination's delta


def _now(now: datetime | None) -> datetime:
    stamp = now or datetime.now(UTC)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    return stamp.replace(microsecond=0)


def sap_marker(now: datetime) -> dict[str, object]:
    """``UpdateDate`` (the day) and ``UpdateTS`` (HHMMSS) for a change at ``now``."""
    return {
        "UpdateDate": now.replace(hour=0, minute=0, second=0, microsecond=0),
        "UpdateTS": now.hour * 10_000 + now.minute * 100 + now.second,
    }


def _in_transaction(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn ``fn(conn, …)`` into ``fn(url, …)`` that runs in its own transaction."""

    def wrapper(url: str, *args: object, **kwargs: object) -> T:
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                return fn(conn, *args, **kwargs)
        finally:
            engine.dispose()

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def _one(conn: sa.Connection, query: sa.Executable, what: str) -> sa.Row:
    row = conn.execute(query).first()
    if row is None:
        raise KeyError(f"{what} not found")
    return row


def _touch_partner(conn: sa.Connection, card_code: str, now: datetime) -> None:
    conn.execute(OCRD.update().where(OCRD.c.CardCode == card_code).values(**sap_marker(now)))


def _split_key(customer_key: str) -> tuple[str, str]:
    for prefix in ("BP", "CP", "W"):
        if customer_key.startswith(prefix):
            return prefix, customer_key[len(prefix) :]
    raise ValueError(f"not a customer key: {customer_key!r} (expected W<id>, BP<code> or CP<code>)")


def _set_customer_email(conn: sa.Connection, customer_key: str, email: str | None, now: datetime | None = None) -> None:
    """Change the email of a web customer, business partner or contact person."""
    stamp = _now(now)
    kind, key = _split_key(customer_key)
    if kind == "W":
        done = conn.execute(
            FP_CUSTOMER.update().where(FP_CUSTOMER.c.CustomerId == int(key)).values(Email=email, UpdatedAt=stamp)
        ).rowcount
    elif kind == "BP":
        done = conn.execute(
            OCRD.update().where(OCRD.c.CardCode == key).values(E_Mail=email, **sap_marker(stamp))
        ).rowcount
    else:
        card = _one(conn, sa.select(OCPR.c.CardCode).where(OCPR.c.CntctCode == int(key)), customer_key).CardCode
        done = conn.execute(OCPR.update().where(OCPR.c.CntctCode == int(key)).values(E_MailL=email)).rowcount
        _touch_partner(conn, card, stamp)
    if not done:
        raise KeyError(f"{customer_key} not found")


def _set_customer_address(
    conn: sa.Connection,
    customer_key: str,
    *,
    street: str,
    city: str,
    zip_code: str,
    country: str,
    now: datetime | None = None,
) -> None:
    """Change the default billing address of a web customer (FP_ADDRESS) or business partner (CRD1)."""
    stamp = _now(now)
    kind, key = _split_key(customer_key)
    if kind == "W":
        done = conn.execute(
            FP_ADDRESS.update()
            .where(FP_ADDRESS.c.CustomerId == int(key), FP_ADDRESS.c.AddressType == "billing", FP_ADDRESS.c.IsDefault)
            .values(Street=street, City=city, Zip=zip_code, Country=country, UpdatedAt=stamp)
        ).rowcount
    elif kind == "BP":
        bill_to = _one(conn, sa.select(OCRD.c.BillToDef).where(OCRD.c.CardCode == key), customer_key).BillToDef
        done = conn.execute(
            CRD1.update()
            .where(CRD1.c.CardCode == key, CRD1.c.AdresType == "B", CRD1.c.Address == bill_to)
            .values(Street=street, City=city, ZipCode=zip_code, Country=country)
        ).rowcount
        _touch_partner(conn, key, stamp)
    else:
        raise ValueError("contact persons have no address of their own; change their partner's (BP<code>)")
    if not done:
        raise KeyError(f"no default billing address for {customer_key}")


def _home_price_list(conn: sa.Connection, item_code: str) -> int:
    """The price list of the item's home store (lowest StoreId publishing it), else SAP's base list."""
    home = sa.select(sa.func.min(FP_ITEM_STORE.c.StoreId)).where(FP_ITEM_STORE.c.ItemCode == item_code)
    row = conn.execute(sa.select(FP_STORE.c.PriceList).where(FP_STORE.c.StoreId == home.scalar_subquery())).first()
    return row.PriceList if row else SAP_PRICE_LIST


def _set_item_price(
    conn: sa.Connection, item_code: str, price: float, price_list: int | None = None, now: datetime | None = None
) -> None:
    """Change an item's price in one price list (default: its home store's) and stamp the item."""
    stamp = _now(now)
    plist = price_list if price_list is not None else _home_price_list(conn, item_code)
    done = conn.execute(
        ITM1.update().where(ITM1.c.ItemCode == item_code, ITM1.c.PriceList == plist).values(Price=price)
    ).rowcount
    if not done:
        raise KeyError(f"no price for item {item_code} in price list {plist}")
    conn.execute(OITM.update().where(OITM.c.ItemCode == item_code).values(**sap_marker(stamp)))


def _next_id(conn: sa.Connection, column: sa.Column) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))).scalar_one()) + 1


def _unit_price(conn: sa.Connection, line: CartLine, price_list: int) -> float:
    if line.price is not None:
        return line.price
    base = conn.execute(
        sa.select(ITM1.c.Price).where(ITM1.c.ItemCode == line.item_code, ITM1.c.PriceList == price_list)
    ).scalar()
    delta = 0.0
    if line.combination_id is not None:
        delta = conn.execute(
            sa.select(FP_ITEM_COMBINATION.c.PriceDelta).where(
                FP_ITEM_COMBINATION.c.CombinationId == line.combination_id
            )
        ).scalar() or 0.0
    return round(float(base or 0.0) + float(delta), 2)


def _add_cart(
    conn: sa.Connection,
    customer_id: int,
    lines: Sequence[CartLine | tuple],
    store_id: int | None = None,
    email: str | None = None,
    now: datetime | None = None,
) -> int:
    """Open a cart for a web customer (store and email default to the customer's) and return its CartId."""
    stamp = _now(now)
    customer = _one(
        conn, sa.select(FP_CUSTOMER.c.StoreId, FP_CUSTOMER.c.Email).where(FP_CUSTOMER.c.CustomerId == customer_id),
        f"customer W{customer_id}",
    )  # fmt: skip
    store = store_id if store_id is not None else customer.StoreId
    price_list = conn.execute(sa.select(FP_STORE.c.PriceList).where(FP_STORE.c.StoreId == store)).scalar()
    cart_id = _next_id(conn, FP_CART.c.CartId)
    conn.execute(
        FP_CART.insert().values(
            CartId=cart_id, StoreId=store, CustomerId=customer_id, Email=email if email is not None else customer.Email,
            Status="open", OrderDocEntry=None, CreatedAt=stamp, UpdatedAt=stamp,
        )
    )  # fmt: skip
    rows = []
    for num, raw in enumerate(lines):
        line = raw if isinstance(raw, CartLine) else CartLine(*raw)
        rows.append(
            {"CartId": cart_id, "LineNum": num, "ItemCode": line.item_code, "CombinationId": line.combination_id,
             "Quantity": float(line.quantity), "Price": _unit_price(conn, line, price_list or SAP_PRICE_LIST)}
        )  # fmt: skip
    if rows:
        conn.execute(FP_CART_LINE.insert(), rows)
    return cart_id


def _complete_cart(conn: sa.Connection, cart_id: int, now: datetime | None = None) -> int:
    """Check a cart out: write the sales order (ORDR/RDR1, U_FP_CartId) and mark the cart ordered."""
    stamp = _now(now)
    cart = _one(conn, sa.select(FP_CART).where(FP_CART.c.CartId == cart_id), f"cart C{cart_id}")
    if cart.Status == "ordered":
        raise ValueError(f"cart C{cart_id} is already order {cart.OrderDocEntry}")
    lines = conn.execute(
        sa.select(FP_CART_LINE, OITM.c.ItemName)
        .join(OITM, OITM.c.ItemCode == FP_CART_LINE.c.ItemCode, isouter=True)
        .where(FP_CART_LINE.c.CartId == cart_id)
        .order_by(FP_CART_LINE.c.LineNum)
    ).all()
    if not lines:
        raise ValueError(f"cart C{cart_id} has no lines")
    store = _one(conn, sa.select(FP_STORE).where(FP_STORE.c.StoreId == cart.StoreId), f"store {cart.StoreId}")
    linked = conn.execute(sa.select(FP_CUSTOMER.c.CardCode).where(FP_CUSTOMER.c.CustomerId == cart.CustomerId)).scalar()
    card_code = linked or f"WEB-{store.StoreCode}"
    card_name = conn.execute(sa.select(OCRD.c.CardName).where(OCRD.c.CardCode == card_code)).scalar()
    doc_entry = _next_id(conn, ORDR.c.DocEntry)
    totals = [round(line.Quantity * line.Price, 2) for line in lines]
    day = stamp.replace(hour=0, minute=0, second=0)
    conn.execute(
        ORDR.insert().values(
            DocEntry=doc_entry, DocNum=100_000 + doc_entry, CardCode=card_code, CardName=card_name, DocDate=day,
            DocDueDate=day, DocTotal=round(sum(totals), 2), DocCur=store.Currency, DocStatus="O", CANCELED="N",
            U_FP_CartId=cart_id, U_FP_StoreId=cart.StoreId, CreateDate=day, **sap_marker(stamp),
        )
    )  # fmt: skip
    conn.execute(
        RDR1.insert(),
        [
            {"DocEntry": doc_entry, "LineNum": line.LineNum, "ItemCode": line.ItemCode, "Dscription": line.ItemName,
             "Quantity": line.Quantity, "Price": line.Price, "LineTotal": total, "LineStatus": "O",
             "U_FP_CombinationId": line.CombinationId}
            for line, total in zip(lines, totals, strict=True)
        ],
    )  # fmt: skip
    conn.execute(
        FP_CART.update()
        .where(FP_CART.c.CartId == cart_id)
        .values(Status="ordered", OrderDocEntry=doc_entry, UpdatedAt=stamp)
    )
    return doc_entry


def _order(conn: sa.Connection, doc_entry: int) -> sa.Row:
    return _one(conn, sa.select(ORDR).where(ORDR.c.DocEntry == doc_entry), f"order O{doc_entry}")


def _touch_order(conn: sa.Connection, doc_entry: int, now: datetime, **values: object) -> None:
    conn.execute(ORDR.update().where(ORDR.c.DocEntry == doc_entry).values(**values, **sap_marker(now)))


def _copy_document(
    conn: sa.Connection, header: sa.Table, body: sa.Table, order: sa.Row, lines: list[dict], now: datetime, **extra: object
) -> int:
    """Write a document (delivery or invoice) copied from ``order``; lines carry their Base* link."""
    entry = _next_id(conn, header.c.DocEntry)
    day = now.replace(hour=0, minute=0, second=0)
    total = round(sum(line["LineTotal"] for line in lines), 2)
    conn.execute(
        header.insert().values(
            DocEntry=entry, DocNum=(200_000 if header is ODLN else 300_000) + entry, CardCode=order.CardCode,
            CardName=order.CardName, DocDate=day, DocDueDate=day, DocTotal=extra.pop("DocTotal", total),
            DocCur=order.DocCur, DocStatus=extra.pop("DocStatus", "C"), CANCELED="N", CreateDate=day,
            **sap_marker(now), **extra,
        )
    )  # fmt: skip
    conn.execute(
        body.insert(),
        [{**line, "DocEntry": entry, "LineNum": i, "LineStatus": "C", "BaseType": ORDER_OBJECT_TYPE,
          "BaseEntry": order.DocEntry} for i, line in enumerate(lines)],
    )  # fmt: skip
    return entry


def _ship_order(conn: sa.Connection, doc_entry: int, partial: bool = False, now: datetime | None = None) -> int:
    """Deliver what is still open on the order (``partial``: all but half of its last open line)."""
    stamp = _now(now)
    order = _order(conn, doc_entry)
    if order.CANCELED == "Y":
        raise ValueError(f"order O{doc_entry} is canceled")
    delivered = dict(
        conn.execute(
            sa.select(DLN1.c.BaseLine, sa.func.sum(DLN1.c.Quantity))
            .where(DLN1.c.BaseType == ORDER_OBJECT_TYPE, DLN1.c.BaseEntry == doc_entry)
            .group_by(DLN1.c.BaseLine)
        ).all()
    )
    open_lines = []
    for line in conn.execute(sa.select(RDR1).where(RDR1.c.DocEntry == doc_entry).order_by(RDR1.c.LineNum)).all():
        left = line.Quantity - (delivered.get(line.LineNum) or 0.0)
        if left > 0:
            open_lines.append((line, left))
    if not open_lines:
        raise ValueError(f"order O{doc_entry} is fully delivered")
    if partial:
        last, left = open_lines[-1]
        open_lines[-1] = (last, float(left // 2))
    lines = [
        {"ItemCode": line.ItemCode, "Dscription": line.Dscription, "Quantity": qty, "Price": line.Price,
         "LineTotal": round(qty * line.Price, 2), "BaseLine": line.LineNum}
        for line, qty in open_lines if qty > 0
    ]  # fmt: skip
    if not lines:
        raise ValueError(f"order O{doc_entry} has nothing left to deliver partially")
    entry = _copy_document(conn, ODLN, DLN1, order, lines, stamp)
    fully = not partial
    if fully:
        conn.execute(RDR1.update().where(RDR1.c.DocEntry == doc_entry).values(LineStatus="C"))
    _touch_order(conn, doc_entry, stamp, **({"DocStatus": "C"} if fully else {}))
    return entry


def _pay_order(conn: sa.Connection, doc_entry: int, amount: float | None = None, now: datetime | None = None) -> int:
    """Record a payment of ``amount`` (default: what is still due) on the order's invoice, invoicing it first."""
    stamp = _now(now)
    order = _order(conn, doc_entry)
    invoice = conn.execute(
        sa.select(OINV)
        .where(
            OINV.c.CANCELED == "N",
            OINV.c.DocEntry.in_(
                sa.select(INV1.c.DocEntry).where(INV1.c.BaseType == ORDER_OBJECT_TYPE, INV1.c.BaseEntry == doc_entry)
            ),
        )
        .order_by(OINV.c.DocEntry)
    ).first()
    if invoice is None:
        first = _one(conn, sa.select(RDR1).where(RDR1.c.DocEntry == doc_entry).order_by(RDR1.c.LineNum), "order line")
        line = {"ItemCode": first.ItemCode, "Dscription": first.Dscription, "Quantity": first.Quantity,
                "Price": first.Price, "LineTotal": first.LineTotal, "BaseLine": first.LineNum}  # fmt: skip
        entry = _copy_document(conn, OINV, INV1, order, [line], stamp, DocTotal=order.DocTotal, PaidToDate=0.0,
                               DocStatus="O")  # fmt: skip
        paid_before, total = 0.0, order.DocTotal
    else:
        entry, paid_before, total = invoice.DocEntry, invoice.PaidToDate or 0.0, invoice.DocTotal
    paid = round(min(total, paid_before + (amount if amount is not None else total - paid_before)), 2)
    conn.execute(
        OINV.update()
        .where(OINV.c.DocEntry == entry)
        .values(PaidToDate=paid, DocStatus="C" if paid >= total else "O", **sap_marker(stamp))
    )
    return entry


def _cancel_order(conn: sa.Connection, doc_entry: int, now: datetime | None = None) -> None:
    """Cancel an order (SAP closes it and flags CANCELED)."""
    stamp = _now(now)
    _order(conn, doc_entry)
    conn.execute(RDR1.update().where(RDR1.c.DocEntry == doc_entry).values(LineStatus="C"))
    _touch_order(conn, doc_entry, stamp, DocStatus="C", CANCELED="Y")


set_customer_email = _in_transaction(_set_customer_email)
set_customer_address = _in_transaction(_set_customer_address)
set_item_price = _in_transaction(_set_item_price)
add_cart = _in_transaction(_add_cart)
complete_cart = _in_transaction(_complete_cart)
ship_order = _in_transaction(_ship_order)
pay_order = _in_transaction(_pay_order)
cancel_order = _in_transaction(_cancel_order)


def _sample(conn: sa.Connection, query: sa.Select, rng: np.random.Generator, k: int) -> list:
    """Up to ``k`` distinct values of the query's first column, drawn with ``rng`` (the query bounds the pool)."""
    pool = list(conn.execute(query).scalars())
    if not pool or k <= 0:
        return []
    return [pool[i] for i in sorted(rng.choice(len(pool), min(k, len(pool)), replace=False))]


def _random_ids(conn: sa.Connection, column: sa.Column, rng: np.random.Generator, k: int) -> list[int]:
    """``k`` random existing ids of an integer key, without scanning the whole table."""
    top = int(conn.execute(sa.select(sa.func.max(column))).scalar() or 0)
    if top == 0:
        return []
    wanted = sorted({int(v) for v in rng.integers(1, top + 1, k * 2)})
    found = list(conn.execute(sa.select(column).where(column.in_(wanted)).order_by(column)).scalars())
    return found[:k]


def simulate(
    url: str,
    seed: int,
    new_carts: int = 20,
    new_orders: int = 10,
    changes: int = 20,
    now: datetime | None = None,
) -> dict[str, int]:
    """A burst of store activity: new carts, checkouts of open carts, and ``changes`` mixed edits (emails,
    addresses, item prices, deliveries, payments, cancellations), all stamped ``now``. Returns what was done."""
    stamp = _now(now)
    rng = np.random.default_rng(seed)
    done = dict.fromkeys(
        ("carts_added", "carts_ordered", "emails_changed", "addresses_changed", "prices_changed",
         "orders_shipped", "orders_paid", "orders_canceled"), 0,
    )  # fmt: skip
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for customer in _random_ids(conn, FP_CUSTOMER.c.CustomerId, rng, new_carts):
                offer = _sample(
                    conn,
                    sa.select(FP_ITEM_STORE.c.ItemCode)
                    .join(FP_CUSTOMER, FP_CUSTOMER.c.StoreId == FP_ITEM_STORE.c.StoreId)
                    .where(FP_CUSTOMER.c.CustomerId == customer)
                    .order_by(FP_ITEM_STORE.c.ItemCode)
                    .limit(200),
                    rng, int(rng.integers(1, 4)),
                )  # fmt: skip
                lines = [CartLine(code, float(rng.integers(1, 4))) for code in offer]
                _add_cart(conn, customer, lines, now=stamp)
                done["carts_added"] += 1
            open_carts = (
                sa.select(FP_CART.c.CartId)
                .where(FP_CART.c.Status == "open", FP_CART.c.CartId.in_(sa.select(FP_CART_LINE.c.CartId)))
                .order_by(FP_CART.c.UpdatedAt.desc(), FP_CART.c.CartId.desc())
                .limit(max(new_orders * 3, 1))
            )
            for cart in _sample(conn, open_carts, rng, new_orders):
                _complete_cart(conn, cart, now=stamp)
                done["carts_ordered"] += 1
            _apply_changes(conn, rng, changes, stamp, done)
    finally:
        engine.dispose()
    return done


def _apply_changes(conn: sa.Connection, rng: np.random.Generator, changes: int, stamp: datetime,
                   done: dict[str, int]) -> None:  # fmt: skip
    """``changes`` edits, cycling through emails, addresses, prices and order status changes."""
    kinds = ("email", "address", "price", "ship", "pay", "cancel")
    per_kind = {k: len(range(i, changes, len(kinds))) for i, k in enumerate(kinds)}
    for cid in _random_ids(conn, FP_CUSTOMER.c.CustomerId, rng, per_kind["email"]):
        _set_customer_email(conn, f"W{cid}", f"changed.{cid}.{stamp:%Y%m%d%H%M%S}@example.com", stamp)
        done["emails_changed"] += 1
    with_address = sa.select(FP_ADDRESS.c.CustomerId).where(FP_ADDRESS.c.IsDefault, FP_ADDRESS.c.AddressType == "billing")
    for cid in _random_ids(conn, FP_CUSTOMER.c.CustomerId, rng, per_kind["address"]):
        if conn.execute(with_address.where(FP_ADDRESS.c.CustomerId == cid)).first():
            _set_customer_address(conn, f"W{cid}", street=f"Neue Straße {int(rng.integers(1, 99))}",
                                  city="Berlin", zip_code="10115", country="DE", now=stamp)  # fmt: skip
            done["addresses_changed"] += 1
    items = _sample(conn, sa.select(OITM.c.ItemCode).order_by(OITM.c.ItemCode), rng, per_kind["price"])
    for code in items:
        _set_item_price(conn, code, round(float(rng.uniform(5, 250)), 2), now=stamp)
        done["prices_changed"] += 1
    open_orders = (
        sa.select(ORDR.c.DocEntry)
        .where(ORDR.c.DocStatus == "O", ORDR.c.CANCELED == "N")
        .order_by(ORDR.c.DocEntry.desc())
        .limit(max(changes * 3, 1))
    )
    wanted = per_kind["ship"] + per_kind["pay"] + per_kind["cancel"]
    orders = _sample(conn, open_orders, rng, wanted)
    actions: list[tuple[str, Callable[[int], object]]] = (
        [("orders_shipped", lambda d: _ship_order(conn, d, partial=bool(rng.random() < 0.3), now=stamp))] * per_kind["ship"]
        + [("orders_paid", lambda d: _pay_order(conn, d, now=stamp))] * per_kind["pay"]
        + [("orders_canceled", lambda d: _cancel_order(conn, d, now=stamp))] * per_kind["cancel"]
    )  # fmt: skip
    for (name, action), doc_entry in zip(actions, orders, strict=False):
        try:
            action(doc_entry)
        except ValueError:  # e.g. nothing left to deliver partially: skip, as a clerk would
            continue
        done[name] += 1
