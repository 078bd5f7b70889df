"""The everyday changes of a live store, through the real job against the sandbox, HubSpot read back over
HTTP (docs/identity.md): emails that move, links that arrive late, bad values, reassignments, deletes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from dagster import DagsterInstance

from fp_demo_store import simulate
from fp_hubspot_assets.runner import resource_config, run_sync
from fp_hubspot_assets_tests.fixtures_sync import (
    SyncEnv,
    assert_hubspot_matches,
    hubspot_value,
    logged_keys,
    sql,
)

NOW = "2026-11-28 09:00:00"


def linked_ids(record: dict[str, Any], to_type: str) -> set[str]:
    return {a["id"] for a in record["associations"].get(to_type, [])}


def key_of(env: SyncEnv, object_type: str, hubspot_id: str) -> str:
    return next(k for k, r in env.hubspot(object_type).items() if r["id"] == hubspot_id)


def web_customers_with_deals(env: SyncEnv) -> list[str]:
    """Synced web-customer contact keys with at least one deal, with an email, in key order."""
    contacts = env.hubspot("contacts")
    by_id = {r["id"]: k for k, r in contacts.items()}
    owners = {by_id[i] for d in env.hubspot("deals").values() for i in linked_ids(d, "contacts") if i in by_id}
    shared = {e for (e,) in sql(env, 'SELECT LOWER(TRIM("Email")) FROM "FP_CUSTOMER" GROUP BY 1 HAVING COUNT(*) > 1')}
    return sorted(
        k for k in owners if k.startswith("W") and hubspot_value(contacts[k], "email") and hubspot_value(contacts[k], "email") not in shared
    )


def failed_messages(env: SyncEnv, run_id: str) -> list[str]:
    log = env.state().log_frame(run_id=run_id).filter(pl.col("action") == "failed")
    return [str(m) for m in log["message"]]


def cart_deal_with_lines(env: SyncEnv, minimum: int = 2) -> tuple[str, list[str]]:
    """An open cart's deal with at least ``minimum`` synced line items."""
    deals = env.hubspot("deals")
    per_deal: dict[str, list[str]] = {}
    for key in env.hubspot("line_items"):
        per_deal.setdefault(key.rpartition(":L")[0], []).append(key)
    return next(
        (deal, sorted(keys)) for deal, keys in sorted(per_deal.items())
        if deal.startswith("C") and len(keys) >= minimum and deal in deals
        and hubspot_value(deals[deal], "fp_order_status") == ""
    )


# ---------------------------------------------------------------- identity: emails move between people
def test_an_email_given_up_and_taken_by_a_new_customer_stays_with_each_person(sync_env: SyncEnv) -> None:
    sync_env.run()
    before = sync_env.hubspot("contacts")
    old_key = web_customers_with_deals(sync_env)[0]
    old_id, email = before[old_key]["id"], hubspot_value(before[old_key], "email")
    deals_before = {k for k, d in sync_env.hubspot("deals").items() if old_id in linked_ids(d, "contacts")}
    customer_id = int(old_key[1:])
    new_id = sql(sync_env, 'SELECT MAX("CustomerId") + 1 FROM "FP_CUSTOMER"')[0][0]
    sql(sync_env, 'UPDATE "FP_CUSTOMER" SET "Email" = ?, "UpdatedAt" = ? WHERE "CustomerId" = ?',
        f"moved.{customer_id}@example.com", NOW, customer_id)
    sql(sync_env, 'INSERT INTO "FP_CUSTOMER" SELECT ?, "StoreId", NULL, ?, \'New\', \'Person\', NULL, 0, 0, ?, ? '
        'FROM "FP_CUSTOMER" WHERE "CustomerId" = ?', new_id, email, NOW, NOW, customer_id)
    sql(sync_env, 'INSERT INTO "FP_CUSTOMER_ROLE" SELECT ?, "RoleId" FROM "FP_CUSTOMER_ROLE" WHERE "CustomerId" = ?',
        new_id, customer_id)

    run = sync_env.run()
    after = sync_env.hubspot("contacts")
    assert after[old_key]["id"] == old_id, "the person keeps their contact"
    assert hubspot_value(after[old_key], "email") == f"moved.{customer_id}@example.com"
    new_key = f"W{new_id}"
    assert after[new_key]["id"] != old_id and hubspot_value(after[new_key], "email") == email
    assert "contacts" not in logged_keys(sync_env, run.run_id, "adopted")
    assert new_key in logged_keys(sync_env, run.run_id, "created")["contacts"]
    assert failed_messages(sync_env, run.run_id) == []
    deals_after = {k for k, d in sync_env.hubspot("deals").items() if old_id in linked_ids(d, "contacts")}
    assert deals_after == deals_before, "the old person's deals stay with them"
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


def test_two_customers_swap_emails_in_one_run(sync_env: SyncEnv) -> None:
    sync_env.run()
    before = sync_env.hubspot("contacts")
    a, b = web_customers_with_deals(sync_env)[:2]
    email_a, email_b = hubspot_value(before[a], "email"), hubspot_value(before[b], "email")
    for key, email in ((a, email_b), (b, email_a)):
        sql(sync_env, 'UPDATE "FP_CUSTOMER" SET "Email" = ?, "UpdatedAt" = ? WHERE "CustomerId" = ?', email, NOW, int(key[1:]))

    run = sync_env.run()
    after = sync_env.hubspot("contacts")
    assert (after[a]["id"], after[b]["id"]) == (before[a]["id"], before[b]["id"])
    assert (hubspot_value(after[a], "email"), hubspot_value(after[b], "email")) == (email_b, email_a)
    assert failed_messages(sync_env, run.run_id) == []
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


def test_an_email_moved_between_two_existing_customers_lands_in_one_run(sync_env: SyncEnv) -> None:
    sync_env.run()
    before = sync_env.hubspot("contacts")
    giver, taker = web_customers_with_deals(sync_env)[:2]
    given = hubspot_value(before[giver], "email")
    sql(sync_env, 'UPDATE "FP_CUSTOMER" SET "Email" = ?, "UpdatedAt" = ? WHERE "CustomerId" = ?', "new.address@example.com", NOW, int(giver[1:]))
    sql(sync_env, 'UPDATE "FP_CUSTOMER" SET "Email" = ?, "UpdatedAt" = ? WHERE "CustomerId" = ?', given, NOW, int(taker[1:]))

    run = sync_env.run()
    after = sync_env.hubspot("contacts")
    assert hubspot_value(after[taker], "email") == given and after[taker]["id"] == before[taker]["id"]
    assert hubspot_value(after[giver], "email") == "new.address@example.com" and after[giver]["id"] == before[giver]["id"]
    assert failed_messages(sync_env, run.run_id) == []
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


def test_an_email_held_by_a_customer_no_longer_synced_is_a_conflict_naming_both_keys(sync_env: SyncEnv) -> None:
    sync_env.run()
    before = sync_env.hubspot("contacts")
    holder, taker = web_customers_with_deals(sync_env)[:2]
    email = hubspot_value(before[holder], "email")
    sql(sync_env, 'UPDATE "FP_CUSTOMER" SET "Disabled" = 1, "UpdatedAt" = ? WHERE "CustomerId" = ?', NOW, int(holder[1:]))
    sql(sync_env, 'UPDATE "FP_CUSTOMER" SET "Email" = ?, "UpdatedAt" = ? WHERE "CustomerId" = ?', email, NOW, int(taker[1:]))

    run = sync_env.run()
    after = sync_env.hubspot("contacts")
    assert after[holder]["id"] == before[holder]["id"] and hubspot_value(after[holder], "email") == email
    assert after[taker]["id"] == before[taker]["id"], "no adoption of another key's contact"
    (message,) = failed_messages(sync_env, run.run_id)
    assert email in message and holder in message and taker in message and before[holder]["id"] in message


# ---------------------------------------------------------------- late links: one purchase, one deal
def _unlink(env: SyncEnv, cart_id: int, doc_entry: int) -> None:
    sql(env, 'UPDATE "ORDR" SET "U_FP_CartId" = NULL WHERE "DocEntry" = ?', doc_entry)
    sql(env, 'UPDATE "FP_CART" SET "Status" = \'open\', "OrderDocEntry" = NULL WHERE "CartId" = ?', cart_id)


def _link(env: SyncEnv, cart_id: int, doc_entry: int) -> None:
    sql(env, 'UPDATE "ORDR" SET "U_FP_CartId" = ? WHERE "DocEntry" = ?', cart_id, doc_entry)
    sql(env, 'UPDATE "FP_CART" SET "Status" = \'ordered\', "OrderDocEntry" = ?, "UpdatedAt" = ? WHERE "CartId" = ?',
        doc_entry, NOW, cart_id)


def test_an_order_linked_to_its_synced_cart_late_merges_into_the_carts_deal(sync_env: SyncEnv) -> None:
    sync_env.run()
    cart_key, _lines = cart_deal_with_lines(sync_env)
    cart_deal_id = sync_env.hubspot("deals")[cart_key]["id"]
    doc_entry = simulate.complete_cart(sync_env.sap_url, int(cart_key[1:]))
    _unlink(sync_env, int(cart_key[1:]), doc_entry)
    sync_env.run()
    order_key = f"O{doc_entry}"
    assert {cart_key, order_key} <= set(sync_env.hubspot("deals")), "unlinked, they are two deals"

    _link(sync_env, int(cart_key[1:]), doc_entry)
    run = sync_env.run()
    deals = sync_env.hubspot("deals")
    assert order_key not in deals, "the order's deal is archived"
    assert deals[cart_key]["id"] == cart_deal_id, "the cart's deal survives with its history"
    assert hubspot_value(deals[cart_key], "dealname").startswith("Order #")
    assert not [k for k in sync_env.hubspot("line_items") if k.startswith(f"{order_key}:")]
    assert order_key in logged_keys(sync_env, run.run_id, "archived")["deals"]
    assert sync_env.state().hubspot_ids("deals", [order_key]) == {}
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


def test_an_order_whose_cart_arrives_late_is_rekeyed_to_the_carts_deal(sync_env: SyncEnv) -> None:
    carts = sql(sync_env, 'SELECT "CartId" FROM "FP_CART" WHERE "Status" = \'open\' AND "CustomerId" IN '
                '(SELECT "CustomerId" FROM "FP_CUSTOMER" WHERE "IsGuest" = 0) ORDER BY "CartId"')
    cart_id = next(c for (c,) in carts if sql(sync_env, 'SELECT COUNT(*) FROM "FP_CART_LINE" WHERE "CartId" = ?', c)[0][0] >= 2)
    doc_entry = simulate.complete_cart(sync_env.sap_url, cart_id)
    _unlink(sync_env, cart_id, doc_entry)
    cart_row = sql(sync_env, 'SELECT * FROM "FP_CART" WHERE "CartId" = ?', cart_id)[0]
    line_rows = sql(sync_env, 'SELECT * FROM "FP_CART_LINE" WHERE "CartId" = ?', cart_id)
    sql(sync_env, 'DELETE FROM "FP_CART_LINE" WHERE "CartId" = ?', cart_id)
    sql(sync_env, 'DELETE FROM "FP_CART" WHERE "CartId" = ?', cart_id)
    sync_env.run()
    order_key, cart_key = f"O{doc_entry}", f"C{cart_id}"
    order = sync_env.hubspot("deals")[order_key]
    order_lines = {k.rpartition(":")[2]: r["id"] for k, r in sync_env.hubspot("line_items").items() if k.startswith(f"{order_key}:")}
    assert order_lines

    marks = ",".join("?" * len(cart_row))
    sql(sync_env, f'INSERT INTO "FP_CART" VALUES ({marks})', *cart_row)
    for row in line_rows:
        sql(sync_env, f'INSERT INTO "FP_CART_LINE" VALUES ({",".join("?" * len(row))})', *row)
    _link(sync_env, cart_id, doc_entry)
    run = sync_env.run()
    deals = sync_env.hubspot("deals")
    assert order_key not in deals and deals[cart_key]["id"] == order["id"], "one deal, the order's, now keyed by the cart"
    lines = {k.rpartition(":")[2]: r["id"] for k, r in sync_env.hubspot("line_items").items() if k.startswith(f"{cart_key}:")}
    assert lines == order_lines, "the line items moved with their deal"
    assert order_key in logged_keys(sync_env, run.run_id, "merged")["deals"]
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


# ---------------------------------------------------------------- rejected is not removed
def test_a_line_with_a_bad_value_keeps_what_hubspot_has(sync_env: SyncEnv) -> None:
    sync_env.run()
    cart_key, lines = cart_deal_with_lines(sync_env)
    bad = lines[0]
    before = sync_env.hubspot("line_items")[bad]
    sql(sync_env, 'UPDATE "FP_CART_LINE" SET "Quantity" = -3 WHERE "CartId" = ? AND "LineNum" = ?',
        int(cart_key[1:]), int(bad.rpartition(":L")[2]))

    run = sync_env.run()
    after = sync_env.hubspot("line_items")[bad]
    assert after["id"] == before["id"] and hubspot_value(after, "quantity") == hubspot_value(before, "quantity")
    assert "line_items" not in logged_keys(sync_env, run.run_id, "archived")
    log = sync_env.state().log_frame(run_id=run.run_id).filter(pl.col("source_key") == bad)
    assert log.select("action", "message").rows() == [("skipped", "invalid quantity -3.0")]
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


def test_a_deal_that_loses_every_line_has_them_all_archived(sync_env: SyncEnv) -> None:
    sync_env.run()
    cart_key, lines = cart_deal_with_lines(sync_env)
    sql(sync_env, 'DELETE FROM "FP_CART_LINE" WHERE "CartId" = ?', int(cart_key[1:]))
    sql(sync_env, 'UPDATE "FP_CART" SET "UpdatedAt" = ? WHERE "CartId" = ?', NOW, int(cart_key[1:]))

    run = sync_env.run()
    assert not [k for k in sync_env.hubspot("line_items") if k.startswith(f"{cart_key}:")]
    assert logged_keys(sync_env, run.run_id, "archived")["line_items"] == set(lines)
    assert cart_key in sync_env.hubspot("deals")
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


def test_a_negative_total_is_not_sent_and_its_rejected_lines_stay(sync_env: SyncEnv) -> None:
    sync_env.run()
    cart_key, lines = cart_deal_with_lines(sync_env)
    before = sync_env.hubspot("line_items")
    sql(sync_env, 'UPDATE "FP_CART_LINE" SET "Quantity" = -"Quantity" WHERE "CartId" = ?', int(cart_key[1:]))
    sql(sync_env, 'UPDATE "FP_CART" SET "UpdatedAt" = ? WHERE "CartId" = ?', NOW, int(cart_key[1:]))

    run = sync_env.run()
    deal = sync_env.hubspot("deals")[cart_key]
    assert hubspot_value(deal, "amount") == ""
    assert {k: r["id"] for k, r in sync_env.hubspot("line_items").items() if k in lines} == {k: before[k]["id"] for k in lines}
    log = sync_env.state().log_frame(run_id=run.run_id).filter(pl.col("source_key") == cart_key)
    assert [m for a, m in log.select("action", "message").rows() if a == "repaired" and m.startswith("invalid amount -")]
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


# ---------------------------------------------------------------- associations follow the source
def test_a_deal_moved_to_another_customer_and_a_contact_to_another_company_lose_the_old_association(
    sync_env: SyncEnv,
) -> None:
    sync_env.run()
    cart_key, _lines = cart_deal_with_lines(sync_env)
    contacts = sync_env.hubspot("contacts")
    old_contact = key_of(sync_env, "contacts", next(iter(linked_ids(sync_env.hubspot("deals")[cart_key], "contacts"))))
    new_contact = next(k for k in web_customers_with_deals(sync_env) if k != old_contact)
    sql(sync_env, 'UPDATE "FP_CART" SET "CustomerId" = ?, "UpdatedAt" = ? WHERE "CartId" = ?',
        int(new_contact[1:]), NOW, int(cart_key[1:]))
    # a web login moves to another company business partner
    companies = sync_env.hubspot("companies")
    mover, old_card = next(
        (customer, card) for customer, card in sql(sync_env, 'SELECT "CustomerId", "CardCode" FROM "FP_CUSTOMER" '
                                                   'WHERE "CardCode" IS NOT NULL ORDER BY "CustomerId"')
        if f"W{customer}" in contacts and f"BP{card}" in companies and customer != int(new_contact[1:])
        and old_contact != f"W{customer}"
    )
    assert f"BP{old_card}" and companies[f"BP{old_card}"]["id"] in linked_ids(contacts[f"W{mover}"], "companies")
    new_card = next(k[2:] for k in sorted(sync_env.hubspot("companies")) if k != f"BP{old_card}")
    sql(sync_env, 'UPDATE "FP_CUSTOMER" SET "CardCode" = ?, "UpdatedAt" = ? WHERE "CustomerId" = ?', new_card, NOW, mover)
    # an association made by hand in HubSpot is never touched
    hand_contact = contacts[old_contact]["id"]
    unrelated_deal = next(d for k, d in sync_env.hubspot("deals").items() if k != cart_key and hand_contact not in linked_ids(d, "contacts"))
    sync_env.sandbox.client().crm.associations.v4.basic_api.create_default("deals", unrelated_deal["id"], "contacts", hand_contact)

    sync_env.run()
    deal = sync_env.hubspot("deals")[cart_key]
    contacts = sync_env.hubspot("contacts")
    assert linked_ids(deal, "contacts") == {contacts[new_contact]["id"]}
    companies = sync_env.hubspot("companies")
    assert linked_ids(contacts[f"W{mover}"], "companies") == {companies[f"BP{new_card}"]["id"]}
    assert hand_contact in linked_ids(sync_env.hubspot("deals")[key_of(sync_env, "deals", unrelated_deal["id"])], "contacts")
    known = sync_env.state().known_associations("deals", "contacts")
    assert (cart_key, old_contact) not in {(a, b) for a, b, _t in known}
    assert sync_env.run().writes == 0


# ---------------------------------------------------------------- records that vanish from the source
def _delete_order(env: SyncEnv) -> str:
    doc_entry = sql(env, 'SELECT MIN("DocEntry") FROM "ORDR" WHERE "U_FP_CartId" IS NULL')[0][0]
    sql(env, 'DELETE FROM "RDR1" WHERE "DocEntry" = ?', doc_entry)
    sql(env, 'DELETE FROM "ORDR" WHERE "DocEntry" = ?', doc_entry)
    return f"O{doc_entry}"


def test_deleted_records_are_flagged_by_default_and_unflagged_when_they_return(sync_env: SyncEnv) -> None:
    sync_env.run()
    saved = sql(sync_env, 'SELECT * FROM "ORDR" WHERE "DocEntry" = (SELECT MIN("DocEntry") FROM "ORDR" WHERE "U_FP_CartId" IS NULL)')
    assert f"O{saved[0][0]}" in sync_env.hubspot("deals")
    saved_lines = sql(sync_env, 'SELECT * FROM "RDR1" WHERE "DocEntry" = ?', saved[0][0])
    order_key = _delete_order(sync_env)
    lines_before = {k for k in sync_env.hubspot("line_items") if k.startswith(f"{order_key}:")}

    run = sync_env.run()
    today = datetime.now(UTC).date().isoformat()
    deal = sync_env.hubspot("deals")[order_key]
    assert hubspot_value(deal, "fp_deleted_in_source") == today
    assert {k for k in sync_env.hubspot("line_items") if k.startswith(f"{order_key}:")} == lines_before
    assert logged_keys(sync_env, run.run_id, "flagged") == {"deals": {order_key}}
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0

    sql(sync_env, f'INSERT INTO "ORDR" VALUES ({",".join("?" * len(saved[0]))})', *saved[0])
    for row in saved_lines:
        sql(sync_env, f'INSERT INTO "RDR1" VALUES ({",".join("?" * len(row))})', *row)
    sync_env.run()
    assert hubspot_value(sync_env.hubspot("deals")[order_key], "fp_deleted_in_source") == ""
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


def test_archive_policy_archives_a_deleted_order_with_its_line_items(sync_env: SyncEnv) -> None:
    sync_env.write_panel("deletes: archive\n")
    sync_env.run()
    order_key = _delete_order(sync_env)
    run = sync_env.run()
    assert order_key not in sync_env.hubspot("deals")
    assert not [k for k in sync_env.hubspot("line_items") if k.startswith(f"{order_key}:")]
    assert order_key in logged_keys(sync_env, run.run_id, "archived")["deals"]
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


def test_keep_policy_leaves_a_deleted_order_as_it_is(sync_env: SyncEnv) -> None:
    sync_env.write_panel("deletes: keep\n")
    sync_env.run()
    order_key = _delete_order(sync_env)
    before = sync_env.hubspot("deals")[order_key]
    assert sync_env.run().writes == 0
    assert sync_env.hubspot("deals")[order_key]["properties"] == before["properties"]


def test_a_source_that_lost_most_rows_stops_before_deleting_anything(sync_env: SyncEnv) -> None:
    sync_env.run()
    sql(sync_env, 'DELETE FROM "FP_CART_LINE"')
    sql(sync_env, 'DELETE FROM "FP_CART"')
    requests = sync_env.sandbox.stats()
    config = resource_config(
        panel=str(sync_env.panel_path), sap_url=sync_env.sap_url, state_url=sync_env.state_url, mode="full"
    )  # only a full read detects deletions
    with DagsterInstance.ephemeral() as instance:
        summary = run_sync(instance, config)
        assert not summary.success and "hubspot_deals" in summary.failed_steps
        errors = [
            e.dagster_event.step_failure_data.error.to_string()
            for e in instance.all_logs(summary.run_id)
            if e.dagster_event and e.dagster_event.is_step_failure and e.dagster_event.step_failure_data.error
        ]
    assert any("deletes_max_share" in message for message in errors), errors
    flagged = [d for d in sync_env.hubspot("deals").values() if hubspot_value(d, "fp_deleted_in_source")]
    assert flagged == []
    assert sync_env.sandbox.stats()["records"] == requests["records"]


# ---------------------------------------------------------------- deals follow their customer
@pytest.mark.parametrize("send", [False, True])
def test_deals_of_guests_follow_the_panel(sync_env: SyncEnv, send: bool) -> None:
    if send:
        sync_env.write_panel("deals:\n  of_excluded_customers: send\n")
    run = sync_env.run()
    guest_carts = {f"C{c}" for (c,) in sql(sync_env, 'SELECT "CartId" FROM "FP_CART" WHERE "CustomerId" IN '
                                          '(SELECT "CustomerId" FROM "FP_CUSTOMER" WHERE "IsGuest" = 1)')}
    assert guest_carts, "the demo has guest checkouts"
    in_hubspot = guest_carts & set(sync_env.hubspot("deals"))
    assert bool(in_hubspot) == send
    assert run.count("deals", "excluded") >= (0 if send else 1)
    assert_hubspot_matches(sync_env)
