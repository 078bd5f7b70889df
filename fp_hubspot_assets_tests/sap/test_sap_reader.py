"""The SQL reader: canonical schemas exactly, derivations, incremental reads, and rejects that never stop a read."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from fp_demo_store.generate import AS_OF, ORDER_CATEGORIES, STORES, Sizes, mess_plan
from fp_demo_store.simulate import set_customer_email, set_item_price
from fp_hubspot_assets.sap.dependants import item_keys
from fp_hubspot_assets.sap.fetch import REJECTS
from fp_hubspot_assets.sap.reader import ENTITIES, DealKeys, SapReader
from fp_hubspot_assets.source_model import SCHEMAS, lines_total
from fp_hubspot_assets_tests.fixtures_sap import SAP_DEMO_CUSTOMERS, sql_exec, sql_rows

PLAN = mess_plan(SAP_DEMO_CUSTOMERS)
LATER = AS_OF + timedelta(days=1)


def _by_key(frame: pl.DataFrame, key: str) -> dict[str, dict]:
    return {row[key]: row for row in frame.iter_rows(named=True)}


def test_every_entity_has_exactly_the_canonical_schema_and_no_rejects(sap_reader: SapReader) -> None:
    results = sap_reader.read_all()
    assert set(results) == set(ENTITIES)
    for entity, result in results.items():
        assert result.frame.schema == SCHEMAS[entity], entity
        assert result.rejects.schema == REJECTS
        assert result.rejects.is_empty(), result.rejects
        assert result.frame.height > 0
        key = next(iter(SCHEMAS[entity]))
        assert result.frame[key].is_unique().all(), f"{entity}: duplicate {key}"
        assert result.frame[key].null_count() == 0


def test_reading_twice_gives_identical_frames(sap_demo_url: str) -> None:
    with SapReader(sap_demo_url) as a, SapReader(sap_demo_url) as b:
        for entity in ENTITIES:
            assert a.read(entity).frame.equals(b.read(entity).frame), entity


def test_unknown_entity_is_refused(sap_reader: SapReader) -> None:
    with pytest.raises(ValueError, match="unknown entity"):
        sap_reader.read("invoices")


def test_customers_derivations(sap_reader: SapReader, sap_demo_url: str) -> None:
    frame = sap_reader.read("customers").frame
    kinds = frame["kind"].value_counts().sort("kind")
    assert dict(kinds.iter_rows()) == {
        "bp": PLAN["b2b_partners"] + len(STORES),  # + one web-shop (one-time customer) partner per store
        "contact_person": PLAN["contact_persons"],
        "web": SAP_DEMO_CUSTOMERS,
    }
    rows = _by_key(frame, "customer_key")
    guests = frame.filter(pl.col("is_guest"))
    assert guests.height == PLAN["guest_checkouts"]
    assert all(r[0] == "Guest" for r in guests["roles"].to_list())
    registered = frame.filter((pl.col("kind") == "web") & ~pl.col("is_guest"))
    assert all("Registered" in r and "Guest" not in r for r in registered["roles"].to_list())
    # partners: Registered + their OCRG group; contact persons share partner, company name and roles
    code, name, group = sql_rows(
        sap_demo_url,
        'SELECT p."CardCode", p."CardName", g."GroupName" FROM "OCRD" p JOIN "OCRG" g ON g."GroupCode" = p."GroupCode" '
        'WHERE p."CardType" = \'C\' AND p."CmpPrivate" = \'C\' ORDER BY p."CardCode" LIMIT 1',
    )[0]
    bp = rows[f"BP{code}"]
    assert (bp["roles"], bp["company_name"], bp["is_company"], bp["kind"]) == (["Registered", group], name, True, "bp")
    contact = sql_rows(sap_demo_url, 'SELECT "CntctCode", "E_MailL" FROM "OCPR" WHERE "CardCode" = ?', (code,))[0]
    cp = rows[f"CP{contact[0]}"]
    assert (cp["card_code"], cp["company_name"], cp["roles"], cp["email"]) == (code, name, ["Registered", group], contact[1])
    private = frame.filter((pl.col("kind") == "bp") & ~pl.col("is_company"))
    assert private.height > 0 and private["first_name"].null_count() == 0
    # suppliers and leads are not customers
    assert not frame.filter(pl.col("customer_key").str.contains(r"^BP[VL]")).height
    # web logins of partners carry the partner's code and name
    logins = frame.filter((pl.col("kind") == "web") & pl.col("card_code").is_not_null())
    assert logins.height == PLAN["web_logins_of_partners"]
    assert logins["company_name"].null_count() == 0
    assert frame.filter(pl.col("kind") == "web")["active"].not_().sum() == PLAN["disabled_customers"]


def test_addresses_derivations(sap_reader: SapReader, sap_demo_url: str) -> None:
    frame = sap_reader.read("addresses").frame
    web = frame.filter(pl.col("source") == "web")
    sap = frame.filter(pl.col("source") == "sap")
    assert web.height == sql_rows(sap_demo_url, 'SELECT COUNT(*) FROM "FP_ADDRESS"')[0][0]
    assert sap["owner_key"].str.starts_with("BP").all() and web["owner_key"].str.starts_with("W").all()
    defaults = sap.filter("is_default").group_by("owner_key", "address_type").len()
    assert defaults["len"].max() == 1
    assert defaults.height == 2 * sap["owner_key"].n_unique()  # one default bill-to and ship-to per partner
    assert frame["country"].str.contains(r"^[A-Z]{2}$").all()
    assert set(frame["address_type"]) == {"billing", "shipping"}


def test_items_base_rows_combinations_and_prices(sap_reader: SapReader, sap_demo_url: str) -> None:
    frame = sap_reader.read("items").frame
    combos = sql_rows(sap_demo_url, 'SELECT "CombinationId", "ItemCode", "Sku", "Attributes", "PriceDelta" FROM "FP_ITEM_COMBINATION"')
    assert frame.height == PLAN["items"] + len(combos)
    rows = _by_key(frame, "product_key")
    for combination_id, code, sku, attributes, delta in combos:
        base, variant = rows[f"I{code}"], rows[f"I{code}#{combination_id}"]
        assert variant["price"] == pytest.approx(base["price"] + delta)
        assert (variant["sku"], variant["attributes"], variant["combination_id"]) == (sku, attributes, str(combination_id))
        assert base["has_combinations"] and variant["has_combinations"]
        assert variant["store_id"] == base["store_id"]
    # home store = lowest StoreId publishing the item; its price list prices the item
    code, home, price, currency = sql_rows(
        sap_demo_url,
        'SELECT h."ItemCode", h.s, p."Price", p."Currency" FROM (SELECT "ItemCode", MIN("StoreId") s FROM '
        '"FP_ITEM_STORE" GROUP BY "ItemCode" HAVING MIN("StoreId") > 1) h JOIN "FP_STORE" st ON st."StoreId" = h.s '
        'JOIN "ITM1" p ON p."ItemCode" = h."ItemCode" AND p."PriceList" = st."PriceList" LIMIT 1',
    )[0]
    assert (rows[f"I{code}"]["store_id"], rows[f"I{code}"]["price"], rows[f"I{code}"]["currency"]) == (
        str(home), price, currency
    )
    unpublished = frame.filter(pl.col("store_id").is_null() & pl.col("combination_id").is_null())
    assert unpublished.height == PLAN["items_without_store"]
    assert (unpublished["currency"] == "EUR").all()  # SAP's base price list
    assert frame.filter(pl.col("combination_id").is_null() & ~pl.col("has_combinations")).height == (
        PLAN["items"] - PLAN["items_with_combinations"]
    )


def test_order_statuses_follow_documents(sap_reader: SapReader) -> None:
    frame = sap_reader.read("orders").frame
    counts = frame.group_by("order_status", "shipment_status", "payment_status").len()
    got = {tuple(r[:3]): r[3] for r in counts.iter_rows()}
    expected = {c[:3]: int(n) for c, n in zip(ORDER_CATEGORIES, Sizes(SAP_DEMO_CUSTOMERS).category_counts(), strict=True)}
    assert got == expected
    assert frame["lines"].list.len().min() >= 1
    line_sum = frame.select(
        pl.col("lines").list.eval((pl.element().struct.field("quantity") * pl.element().struct.field("price")).round(2)).list.sum()
    ).to_series()
    assert (line_sum - frame["total"]).abs().max() < 0.01
    # lines_total is read with the lines (the deals step loads the orders without them)
    from_lines = frame.select(lines_total(pl.col("lines"))).to_series()
    assert (frame["lines_total"] - from_lines).abs().max() < 1e-6
    assert frame["lines_total"].null_count() == 0


def test_carts_link_to_the_orders_they_became(sap_reader: SapReader) -> None:
    carts = sap_reader.read("carts").frame
    orders = _by_key(sap_reader.read("orders").frame, "order_key")
    ordered = carts.filter(pl.col("status") == "ordered")
    assert ordered.height == PLAN["carts_ordered"]
    assert carts.filter(pl.col("status") == "open")["order_key"].null_count() == carts.height - ordered.height
    for cart in ordered.iter_rows(named=True):
        order = orders[cart["order_key"]]
        assert (order["cart_key"], order["web_customer_key"], order["store_id"]) == (
            cart["cart_key"], cart["customer_key"], cart["store_id"]
        )  # fmt: skip
        strip = [(line["item_code"], line["combination_id"], line["quantity"], line["price"]) for line in order["lines"]]
        assert strip == [(line["item_code"], line["combination_id"], line["quantity"], line["price"]) for line in cart["lines"]]
        assert order["total"] == pytest.approx(cart["total"])
    sap_only = [o for o in orders.values() if o["cart_key"] is None]
    assert len(sap_only) == PLAN["sap_only_orders"]
    assert all(o["web_customer_key"] is None for o in sap_only)


def test_since_reads_only_changes_at_or_after_the_marker(sap_demo_copy: str) -> None:
    with SapReader(sap_demo_copy) as reader:
        newest = {e: reader.max_updated_at(e) for e in ENTITIES}
        assert newest["stores"] is None and all(newest[e] for e in ENTITIES if e != "stores")
        after = {e: reader.read(e, since=newest[e] + timedelta(seconds=1)) for e in ENTITIES if e != "stores"}
        assert all(r.frame.is_empty() for r in after.values())
        at = reader.read("carts", since=newest["carts"])  # the boundary itself is included
        assert at.frame.height >= 1 and (at.frame["updated_at"] == newest["carts"]).all()
        set_customer_email(sap_demo_copy, "W5", "New.Address@Example.com", now=LATER)
        contact = sql_rows(sap_demo_copy, 'SELECT "CntctCode", "CardCode" FROM "OCPR" ORDER BY "CntctCode" LIMIT 1')[0]
        set_customer_email(sap_demo_copy, f"CP{contact[0]}", "cp@example.com", now=LATER)
        changed = reader.read("customers", since=LATER).frame
        siblings = sql_rows(sap_demo_copy, 'SELECT COUNT(*) FROM "OCPR" WHERE "CardCode" = ?', (contact[1],))[0][0]
        assert changed.height == 1 + 1 + siblings  # W5, the partner, and all its contact persons
        rows = _by_key(changed, "customer_key")
        assert rows["W5"]["email"] == "New.Address@Example.com"
        assert rows[f"CP{contact[0]}"]["email"] == "cp@example.com"
        assert rows[f"BP{contact[1]}"]["updated_at"] == LATER
        assert reader.max_updated_at("customers") == LATER
        # an item price change reads the item with all its combinations
        code = sql_rows(sap_demo_copy, 'SELECT MIN("ItemCode") FROM "FP_ITEM_COMBINATION"')[0][0]
        set_item_price(sap_demo_copy, code, 99.5, now=LATER)
        items = reader.read("items", since=LATER).frame
        assert set(items["item_code"]) == {code}
        assert items.filter(pl.col("combination_id").is_null())["price"].to_list() == [99.5]
        assert items.height == 1 + sql_rows(sap_demo_copy, 'SELECT COUNT(*) FROM "FP_ITEM_COMBINATION" WHERE "ItemCode" = ?', (code,))[0][0]


def _stamp(table: str, key: str, value: object, moment: datetime) -> tuple[str, tuple]:
    return (
        f'UPDATE "{table}" SET "UpdateDate" = ?, "UpdateTS" = ? WHERE "{key}" = ?',
        (moment.strftime("%Y-%m-%d 00:00:00.000000"), moment.hour * 10000 + moment.minute * 100 + moment.second, value),
    )


def test_a_delivery_or_invoice_change_makes_its_order_changed(sap_demo_copy: str) -> None:
    delivered, delivery = sql_rows(sap_demo_copy, 'SELECT "BaseEntry", "DocEntry" FROM "DLN1" WHERE "BaseType" = 17 LIMIT 1')[0]
    invoiced, invoice = sql_rows(
        sap_demo_copy, 'SELECT "BaseEntry", "DocEntry" FROM "INV1" WHERE "BaseType" = 17 AND "BaseEntry" <> ? LIMIT 1', (delivered,)
    )[0]
    sql_exec(sap_demo_copy, _stamp("ODLN", "DocEntry", delivery, LATER),
             _stamp("OINV", "DocEntry", invoice, LATER + timedelta(hours=1)))  # fmt: skip
    with SapReader(sap_demo_copy) as reader:
        changed = reader.read("orders", since=LATER).frame
        assert sorted(changed["doc_entry"]) == sorted([delivered, invoiced])
        assert _by_key(changed, "order_key")[f"O{invoiced}"]["updated_at"] == LATER + timedelta(hours=1)
        assert reader.max_updated_at("orders") == LATER + timedelta(hours=1)
        assert reader.read("orders", since=LATER + timedelta(minutes=30)).frame["doc_entry"].to_list() == [invoiced]


def test_corrupt_rows_become_rejects_and_neighbours_are_still_read(sap_demo_copy: str) -> None:
    url = sap_demo_copy
    top = sql_rows(url, 'SELECT MAX("CustomerId") FROM "FP_CUSTOMER"')[0][0]
    item = sql_rows(url, 'SELECT MIN("ItemCode") FROM "FP_ITEM_COMBINATION"')[0][0]
    order_a, order_b = (r[0] for r in sql_rows(url, 'SELECT "DocEntry" FROM "ORDR" ORDER BY "DocEntry" LIMIT 2'))
    sql_exec(
        url,
        ('INSERT INTO "FP_CUSTOMER" ("CustomerId", "Email", "IsGuest", "Disabled", "CreatedAt", "UpdatedAt") '
         "VALUES (?, 'x@example.com', 0, 0, 'last tuesday', '2025-01-01 00:00:00.000000')", (top + 1,)),
        ('UPDATE "FP_CART_LINE" SET "Quantity" = \'three\' WHERE "CartId" = 1 AND "LineNum" = 0', ()),
        ('UPDATE "FP_CART" SET "Status" = \'lost\' WHERE "CartId" = 2', ()),
        ('UPDATE "ORDR" SET "CardCode" = NULL WHERE "DocEntry" = ?', (order_a,)),
        ('UPDATE "RDR1" SET "Price" = \'n/a\' WHERE "DocEntry" = ? AND "LineNum" = 0', (order_b,)),
        ('INSERT INTO "OCPR" ("CntctCode", "CardCode", "Name") VALUES (999999, NULL, \'Nobody\')', ()),
        ('UPDATE "ITM1" SET "Price" = \'call us\' WHERE "ItemCode" = ?', (item,)),
        ('UPDATE "FP_ADDRESS" SET "AddressType" = \'office\' WHERE "AddressId" = 1', ()),
        ('UPDATE "OITM" SET "UpdateDate" = \'yesterday\' WHERE "ItemCode" = (SELECT MAX("ItemCode") FROM "OITM")', ()),
    )  # fmt: skip
    n_combos = sql_rows(url, 'SELECT COUNT(*) FROM "FP_ITEM_COMBINATION" WHERE "ItemCode" = ?', (item,))[0][0]
    with SapReader(url) as reader:
        results = reader.read_all()
        assert reader.max_updated_at("items") is not None  # a garbage marker does not win MAX()
    rejects = pl.concat([r.rejects for r in results.values()])
    got = {(r["entity"], r["source_key"]) for r in rejects.iter_rows(named=True)}
    assert {
        ("customers", f"W{top + 1}"), ("customers", "CP999999"), ("carts", "C1"), ("carts", "C2"),
        ("orders", f"O{order_a}"), ("orders", f"O{order_b}"), ("items", f"I{item}"), ("addresses", "W1:A1"),
    } <= got  # fmt: skip
    reasons = {r["source_key"]: r["reason"] for r in rejects.iter_rows(named=True)}
    assert "CreatedAt" in reasons[f"W{top + 1}"]
    assert "line 0" in reasons["C1"] and "Quantity" in reasons["C1"]
    assert "Status" in reasons["C2"] and "CardCode" in reasons[f"O{order_a}"] and "Price" in reasons[f"O{order_b}"]
    assert "office" in reasons["W1:A1"] and "business partner" in reasons["CP999999"]
    item_rejects = rejects.filter(pl.col("entity") == "items")
    assert item_rejects.height == 1 + n_combos + 1  # the item, its combinations, the item with a garbage date
    # neighbours are read; rejected records are not
    assert results["customers"].frame.height == PLAN["web_customers"] + PLAN["b2b_partners"] + len(STORES) + PLAN["contact_persons"]
    assert results["carts"].frame.height == PLAN["carts"] - 2
    assert results["orders"].frame.height == PLAN["orders"] - 2
    assert "C3" in results["carts"].frame["cart_key"].to_list()
    assert results["addresses"].frame.filter(pl.col("address_key") == "W1:A1").is_empty()
    assert all(r.frame.schema == SCHEMAS[e] for e, r in results.items())


def test_a_full_read_of_orders_and_carts_in_slices_equals_the_one_piece_read(sap_demo_copy: str) -> None:
    """Orders and carts are read in slices of documents (bounded memory at scale); a bad line, a line whose
    document is missing and the documents at either end of a slice come out as in one piece."""
    url = sap_demo_copy
    top_order = sql_rows(url, 'SELECT MAX("DocEntry") FROM "ORDR"')[0][0]
    sql_exec(
        url,
        ('UPDATE "FP_CART_LINE" SET "Quantity" = \'three\' WHERE "CartId" = 3 AND "LineNum" = 0', ()),
        ('INSERT INTO "RDR1" ("DocEntry", "LineNum", "ItemCode", "Quantity", "Price") '
         "VALUES (?, 0, 'X', 'many', 1.0)", (top_order + 5,)),
        ('INSERT INTO "FP_CART_LINE" ("CartId", "LineNum", "ItemCode", "Quantity", "Price") '
         "VALUES (-4, 0, 'X', 'many', 1.0)", ()),
    )  # fmt: skip
    orphans = {"orders": f"O{top_order + 5}", "carts": "C-4"}
    with SapReader(url) as whole, SapReader(url, full_read_slice=7) as sliced:
        for entity, orphan in orphans.items():
            one, many = whole.read(entity), sliced.read(entity)
            assert one.frame.height > 7 * 3, entity  # several slices
            assert many.frame.equals(one.frame), entity
            assert many.rejects.sort("source_key").equals(one.rejects.sort("source_key")), entity
            assert many.frame.n_chunks() > 1, entity  # the slices were not copied into one piece
            rejected = many.rejects["source_key"].to_list()
            assert orphan in rejected, entity
            assert entity == "orders" or "C3" in rejected


def test_an_order_and_its_cart_count_as_changed_through_either_side_of_their_link(sap_demo_copy: str) -> None:
    """Each link direction alone carries the change: a cart naming its order (``OrderDocEntry``) or an order
    naming its cart (``U_FP_CartId``); a cart also changes when its order changes through an invoice."""
    url = sap_demo_copy
    free_orders = 'SELECT o."DocEntry" FROM "ORDR" o WHERE o."U_FP_CartId" IS NULL AND o."DocEntry" NOT IN ' \
                  '(SELECT "OrderDocEntry" FROM "FP_CART" WHERE "OrderDocEntry" IS NOT NULL)'  # fmt: skip
    invoiced = sql_rows(url, f'{free_orders} AND o."DocEntry" IN (SELECT "BaseEntry" FROM "INV1" WHERE "BaseType" = 17) '
                             'ORDER BY 1 LIMIT 1')[0][0]  # fmt: skip
    invoice = sql_rows(url, 'SELECT "DocEntry" FROM "INV1" WHERE "BaseType" = 17 AND "BaseEntry" = ?', (invoiced,))[0][0]
    x1, x2, x3 = (r[0] for r in sql_rows(url, f'{free_orders} AND o."DocEntry" <> ? ORDER BY 1 LIMIT 3', (invoiced,)))
    a1, a2, a3, a4 = (r[0] for r in sql_rows(
        url, 'SELECT c."CartId" FROM "FP_CART" c WHERE c."OrderDocEntry" IS NULL AND c."CartId" NOT IN '
             '(SELECT "U_FP_CartId" FROM "ORDR" WHERE "U_FP_CartId" IS NOT NULL) ORDER BY 1 LIMIT 4'))  # fmt: skip
    later = LATER.strftime("%Y-%m-%d %H:%M:%S.%f")
    sql_exec(
        url,
        ('UPDATE "FP_CART" SET "OrderDocEntry" = ?, "UpdatedAt" = ? WHERE "CartId" = ?', (x1, later, a1)),  # cart → order
        ('UPDATE "ORDR" SET "U_FP_CartId" = ? WHERE "DocEntry" = ?', (a2, x2)),  # order → cart, the cart changed
        ('UPDATE "FP_CART" SET "UpdatedAt" = ? WHERE "CartId" = ?', (later, a2)),
        ('UPDATE "ORDR" SET "U_FP_CartId" = ? WHERE "DocEntry" = ?', (a3, x3)),  # order → cart, the order changed
        _stamp("ORDR", "DocEntry", x3, LATER),
        ('UPDATE "FP_CART" SET "OrderDocEntry" = ? WHERE "CartId" = ?', (invoiced, a4)),  # cart → order, its invoice
        _stamp("OINV", "DocEntry", invoice, LATER),
    )
    with SapReader(url) as reader:
        orders = reader.read("orders", since=LATER).frame
        carts = reader.read("carts", since=LATER).frame
        deals = reader.deal_keys(LATER, LATER)
        items = item_keys(reader, LATER + timedelta(days=1), {"orders": LATER, "carts": LATER}).items
    assert sorted(orders["doc_entry"]) == sorted([x1, x2, x3, invoiced])
    assert sorted(carts["cart_id"]) == sorted([a1, a2, a3, a4])
    assert deals == DealKeys(frozenset([x1, x2, x3, invoiced]), frozenset([a1, a2, a3, a4]))
    lines = sql_rows(url, 'SELECT "ItemCode" FROM "RDR1" WHERE "DocEntry" IN (?, ?, ?, ?) UNION '
                          'SELECT "ItemCode" FROM "FP_CART_LINE" WHERE "CartId" IN (?, ?, ?, ?)',
                     (x1, x2, x3, invoiced, a1, a2, a3, a4))  # fmt: skip
    assert items == {code for (code,) in lines}  # the items of the deals' lines, no item changed itself
