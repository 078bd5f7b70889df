"""CRM object endpoints and HubSpot's write rules, driven only through the official SDK over HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.line_items import ApiException as LineItemsApiException
from hubspot.crm.line_items import SimplePublicObjectInputForCreate as LineItemCreate
from hubspot.crm.objects import ApiException as ObjectsApiException
from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInputUpsert as ObjUpsertBatch
from hubspot.crm.objects import SimplePublicObjectBatchInputUpsert as ObjUpsert
from hubspot.crm.objects import SimplePublicObjectInputForCreate as ObjCreate
from hubspot.crm.properties import PropertyCreate

from hubspot_sandbox.testing import SandboxHandle, running_sandbox


def unique_property(sb: SandboxHandle, obj_type: str, name: str, unique: bool = True) -> None:
    group = {
        "contacts": "contactinformation",
        "companies": "companyinformation",
        "deals": "dealinformation",
        "products": "productinformation",
        "line_items": "lineiteminformation",
        "orders": "orderinformation",
        "carts": "cartinformation",
    }[obj_type]
    sb.client().crm.properties.core_api.create(
        obj_type,
        PropertyCreate(
            name=name, label=name, type="string", field_type="text", group_name=group, has_unique_value=unique
        ),
    )


def upsert_contacts(
    sb: SandboxHandle, items: list[tuple[str, dict[str, str]]], id_property: str = "fp_customer_id"
):
    inputs = [
        SimplePublicObjectBatchInputUpsert(id_property=id_property, id=i, properties=p) for i, p in items
    ]
    return sb.client().crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs)
    )


def error_body(exc: Exception) -> dict:
    return orjson.loads(exc.body)  # type: ignore[attr-defined]


def test_create_get_update_archive_roundtrip(sandbox_session: SandboxHandle) -> None:
    api = sandbox_session.client().crm.contacts.basic_api
    created = api.create(
        SimplePublicObjectInputForCreate(properties={"email": "Anna@Example.com", "firstname": "Anna"})
    )
    assert created.properties["email"] == "anna@example.com"  # HubSpot lower-cases contact emails
    assert created.properties["hs_object_id"] == created.id
    fetched = api.get_by_id(created.id, properties=["firstname", "city"])
    # what was asked for, plus the standard properties HubSpot puts in every answer
    assert set(fetched.properties) == {"firstname", "city", "hs_object_id", "createdate", "lastmodifieddate"}
    assert fetched.properties["firstname"] == "Anna" and fetched.properties["city"] is None
    assert fetched.properties["hs_object_id"] == created.id
    assert api.get_by_id("anna@example.com", id_property="email").id == created.id
    updated = api.update(created.id, SimplePublicObjectInput(properties={"city": "Bern"}))
    assert updated.properties["city"] == "Bern" and updated.updated_at >= created.updated_at
    api.archive(created.id)
    with pytest.raises(ContactsApiException) as exc:
        api.get_by_id(created.id)
    assert exc.value.status == 404 and error_body(exc.value)["category"] == "OBJECT_NOT_FOUND"
    assert sandbox_session.objects("contacts") == []


def test_list_pages_with_limit_and_after(sandbox_session: SandboxHandle) -> None:
    client = sandbox_session.client()
    for i in range(7):
        client.crm.companies.basic_api.create({"properties": {"name": f"Co {i}"}})
    first = client.crm.companies.basic_api.get_page(limit=3)
    second = client.crm.companies.basic_api.get_page(limit=3, after=first.paging.next.after)
    names = [r.properties["name"] for r in first.results + second.results]
    assert names == [f"Co {i}" for i in range(6)]
    assert len(client.crm.companies.get_all()) == 7
    with pytest.raises(Exception) as exc:
        client.crm.companies.basic_api.get_page(limit=101)
    assert exc.value.status == 400


def test_all_object_types_on_v3_and_dated_paths(sandbox_session: SandboxHandle) -> None:
    client = sandbox_session.client()
    for obj_type in ("contacts", "companies", "deals", "products", "line_items", "orders", "carts"):
        rec = client.crm.objects.basic_api.create(obj_type, ObjCreate(properties={}))
        dated = client.api_request({"method": "GET", "path": f"/crm/objects/2026-03/{obj_type}/{rec.id}"})
        assert dated.status_code == 200 and dated.json()["id"] == rec.id
    listed = client.api_request({"method": "GET", "path": "/crm/objects/2026-03/orders?limit=5"}).json()
    assert len(listed["results"]) == 1


def test_batch_upsert_creates_then_updates_with_new_flag(sandbox_session: SandboxHandle) -> None:
    unique_property(sandbox_session, "contacts", "fp_customer_id")
    first = upsert_contacts(
        sandbox_session, [("S1:C1", {"email": "a@x.com"}), ("S1:C2", {"email": "b@x.com"})]
    )
    assert type(first).__name__ == "BatchResponseSimplePublicUpsertObject"
    assert [r.new for r in first.results] == [True, True]
    assert {r.properties["fp_customer_id"] for r in first.results} == {"S1:C1", "S1:C2"}
    second = upsert_contacts(sandbox_session, [("S1:C1", {"firstname": "A"})])
    assert second.results[0].new is False and second.results[0].id == first.results[0].id
    stored = {o["properties"]["fp_customer_id"]: o["properties"] for o in sandbox_session.objects("contacts")}
    assert stored["S1:C1"]["firstname"] == "A" and stored["S1:C1"]["email"] == "a@x.com"


def test_upsert_by_email_matches_regardless_of_case(sandbox_session: SandboxHandle) -> None:
    first = upsert_contacts(sandbox_session, [("Mia@Shop.com", {"firstname": "Mia"})], id_property="email")
    again = upsert_contacts(sandbox_session, [("mia@SHOP.com", {"lastname": "Muster"})], id_property="email")
    assert first.results[0].new is True and again.results[0].new is False
    assert again.results[0].id == first.results[0].id
    assert len(sandbox_session.objects("contacts")) == 1


def test_upsert_by_non_unique_property_is_rejected(sandbox_session: SandboxHandle) -> None:
    with pytest.raises(ContactsApiException) as exc:
        upsert_contacts(sandbox_session, [("Anna", {})], id_property="firstname")
    assert exc.value.status == 400
    assert "Unable to perform upsert by non-unique firstname property" in error_body(exc.value)["message"]


def test_batch_over_100_inputs_is_rejected(sandbox_session: SandboxHandle) -> None:
    inputs = [SimplePublicObjectBatchInputForCreate(properties={"firstname": str(i)}) for i in range(101)]
    with pytest.raises(ContactsApiException) as exc:
        sandbox_session.client().crm.contacts.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
        )
    assert exc.value.status == 400
    assert sandbox_session.objects("contacts") == []


def test_duplicate_email_conflicts_with_existing_id(sandbox_session: SandboxHandle) -> None:
    api = sandbox_session.client().crm.contacts.basic_api
    first = api.create(SimplePublicObjectInputForCreate(properties={"email": "dup@x.com"}))
    with pytest.raises(ContactsApiException) as exc:
        api.create(SimplePublicObjectInputForCreate(properties={"email": "DUP@x.com"}))
    body = error_body(exc.value)
    assert exc.value.status == 409 and body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {first.id}"


def test_batch_create_is_all_or_nothing_without_trace_ids(sandbox_session: SandboxHandle) -> None:
    batch = sandbox_session.client().crm.contacts.batch_api
    inputs = [
        SimplePublicObjectBatchInputForCreate(properties={"email": "ok@x.com"}),
        SimplePublicObjectBatchInputForCreate(properties={"email": "not-an-email"}),
    ]
    with pytest.raises(ContactsApiException) as exc:
        batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    assert exc.value.status == 400 and "INVALID_EMAIL" in error_body(exc.value)["message"]
    assert sandbox_session.objects("contacts") == []


def test_batch_create_gives_207_with_unique_trace_ids(sandbox_session: SandboxHandle) -> None:
    batch = sandbox_session.client().crm.contacts.batch_api
    inputs = [
        SimplePublicObjectBatchInputForCreate(properties={"email": "ok@x.com"}, object_write_trace_id="t1"),
        SimplePublicObjectBatchInputForCreate(properties={"email": "bad"}, object_write_trace_id="t2"),
        SimplePublicObjectBatchInputForCreate(properties={"nope": "1"}, object_write_trace_id="t3"),
    ]
    result = batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    assert type(result).__name__ == "BatchResponseSimplePublicObjectWithErrors"
    assert result.num_errors == 2 and len(result.results) == 1
    by_trace = {e.context["objectWriteTraceId"][0]: e for e in result.errors}
    assert "INVALID_EMAIL" in by_trace["t2"].message
    assert by_trace["t3"].category == "VALIDATION_ERROR" and "PROPERTY_DOESNT_EXIST" in by_trace["t3"].message


BAD_BATCH = [("S1:C2", {"email": "fresh@x.com"}), ("S1:C3", {"email": "taken@x.com"}), ("S1:C4", {"email": "@broken"})]


def test_batch_upsert_fails_whole_on_one_bad_input_by_default(sandbox_session: SandboxHandle) -> None:
    unique_property(sandbox_session, "contacts", "fp_customer_id")
    upsert_contacts(sandbox_session, [("S1:C1", {"email": "taken@x.com"})])
    with pytest.raises(ContactsApiException) as exc:
        upsert_contacts(sandbox_session, BAD_BATCH)
    body = error_body(exc.value)
    assert exc.value.status == 409 and body["category"] == "CONFLICT"
    assert body["context"]["ids"] == ["S1:C3"], "one error naming the first bad input"
    emails = {o["properties"].get("email") for o in sandbox_session.objects("contacts")}
    assert "fresh@x.com" not in emails, "nothing of a refused batch is written"


def test_batch_upsert_reports_per_input_errors_as_207_when_partial(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", batch_errors="partial") as sb:
        unique_property(sb, "contacts", "fp_customer_id")
        upsert_contacts(sb, [("S1:C1", {"email": "taken@x.com"})])
        result = upsert_contacts(sb, BAD_BATCH)
    assert type(result).__name__ == "BatchResponseSimplePublicUpsertObjectWithErrors"
    assert [r.properties["fp_customer_id"] for r in result.results] == ["S1:C2"]
    categories = sorted(e.category for e in result.errors)
    assert categories == ["CONFLICT", "VALIDATION_ERROR"]


def test_unique_custom_property_is_enforced(sandbox_session: SandboxHandle) -> None:
    unique_property(sandbox_session, "products", "fp_product_id")
    api = sandbox_session.client().crm.objects.basic_api
    api.create("products", ObjCreate(properties={"fp_product_id": "P1", "name": "Chair"}))
    with pytest.raises(ObjectsApiException) as exc:
        api.create("products", ObjCreate(properties={"fp_product_id": "P1", "name": "Other"}))
    assert exc.value.status == 409 and "Existing ID" in error_body(exc.value)["message"]


def test_unknown_property_and_bad_values_are_validation_errors(sandbox_session: SandboxHandle) -> None:
    api = sandbox_session.client().crm.objects.basic_api
    cases = [
        ("contacts", {"shoe_size": "44"}, "PROPERTY_DOESNT_EXIST"),
        ("contacts", {"email": "two@@x.com"}, "INVALID_EMAIL"),
        ("contacts", {"lifecyclestage": "prospect"}, "INVALID_OPTION"),
        ("deals", {"amount": "lots"}, "INVALID_DECIMAL"),
        ("deals", {"amount": "1_000"}, "INVALID_DECIMAL"),
        ("deals", {"amount": "NaN"}, "INVALID_DECIMAL"),
        ("deals", {"dealstage": "no-such-stage"}, "INVALID_OPTION"),
        ("deals", {"deal_currency_code": "CHF"}, "INVALID_CURRENCY"),  # the account has EUR, USD, GBP
        ("line_items", {"name": "x", "hs_product_id": "424242"}, "INVALID_OBJECT_ID"),
    ]
    for obj_type, props, code in cases:
        with pytest.raises(ObjectsApiException) as exc:
            api.create(obj_type, ObjCreate(properties=props))
        body = error_body(exc.value)
        assert exc.value.status == 400 and body["category"] == "VALIDATION_ERROR", props
        assert code in body["message"], (props, body["message"])
    assert api.create("deals", ObjCreate(properties={"amount": "1000.50", "deal_currency_code": "USD"})).id


def test_lenient_values_flag_accepts_what_hubspot_refuses(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", lenient_values=True) as sb:
        api = sb.client().crm.objects.basic_api
        made = api.create("deals", ObjCreate(properties={"amount": "1_000", "deal_currency_code": "CHF"}))
        assert made.properties["amount"] == "1_000"


def test_negative_line_item_price_is_rejected(sandbox_session: SandboxHandle) -> None:
    api = sandbox_session.client().crm.line_items.basic_api
    assert api.create(LineItemCreate(properties={"name": "x", "price": "0", "quantity": "2"})).id
    with pytest.raises(LineItemsApiException) as exc:
        api.create(LineItemCreate(properties={"name": "x", "price": "-1.5"}))
    assert exc.value.status == 400 and "INVALID_PRICE" in error_body(exc.value)["message"]


def test_default_properties_and_deal_pipeline(sandbox_session: SandboxHandle) -> None:
    client = sandbox_session.client()
    names = {p.name for p in client.crm.properties.core_api.get_all("contacts").results}
    assert {
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
        "website",
        "lifecyclestage",
        "hs_object_id",
        "createdate",
        "lastmodifieddate",
    } <= names
    deal_props = {p.name for p in client.crm.properties.core_api.get_all("deals").results}
    assert {
        "dealname",
        "amount",
        "closedate",
        "pipeline",
        "dealstage",
        "deal_currency_code",
        "hs_lastmodifieddate",
    } <= deal_props
    pipeline = client.crm.pipelines.pipelines_api.get_by_id("deals", "default")
    assert [s.id for s in pipeline.stages][-2:] == ["closedwon", "closedlost"]
    deal = client.crm.deals.basic_api.create({"properties": {"dealname": "D", "dealstage": "closedwon"}})
    assert deal.properties["pipeline"] == "default"


def test_batch_read_and_archive(sandbox_session: SandboxHandle) -> None:
    batch = sandbox_session.client().crm.contacts.batch_api
    created = batch.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                SimplePublicObjectBatchInputForCreate(properties={"email": f"r{i}@x.com"}) for i in range(3)
            ]
        )
    )
    ids = [r.id for r in created.results]
    batch.archive(BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=ids[0])]))
    read = batch.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=i) for i in ids], properties=["email"], properties_with_history=[]
        )
    )
    assert sorted(r.id for r in read.results) == sorted(ids[1:])
    assert read.errors[0].category == "OBJECT_NOT_FOUND" and read.errors[0].context["ids"] == [ids[0]]


def test_search_filters_sorts_and_limits(sandbox_session: SandboxHandle) -> None:
    client = sandbox_session.client()
    for i, (name, amount) in enumerate([("Alpha", "10"), ("Beta", "250"), ("Gamma", "99.5"), ("Delta", "")]):
        props = {"dealname": name, "dealstage": "qualifiedtobuy" if i % 2 else "closedwon"}
        if amount:
            props["amount"] = amount
        client.crm.deals.basic_api.create({"properties": props})
    search = client.crm.deals.search_api.do_search

    def names(*filters: dict, sorts: list | None = None) -> list[str]:
        req = PublicObjectSearchRequest(
            filter_groups=[{"filters": list(filters)}] if filters else None,
            sorts=sorts or ["dealname"],
            properties=["dealname", "amount"],
            limit=200,
        )
        return [r.properties["dealname"] for r in search(req).results]

    assert names({"propertyName": "dealname", "operator": "EQ", "value": "alpha"}) == ["Alpha"]
    assert names({"propertyName": "dealname", "operator": "NEQ", "value": "Alpha"}) == [
        "Beta",
        "Delta",
        "Gamma",
    ]
    assert names({"propertyName": "amount", "operator": "GT", "value": "99.5"}) == ["Beta"]
    assert names({"propertyName": "amount", "operator": "GTE", "value": "99.5"}) == ["Beta", "Gamma"]
    assert names({"propertyName": "amount", "operator": "LT", "value": "99.5"}) == ["Alpha"]
    assert names({"propertyName": "amount", "operator": "LTE", "value": "99.5"}) == ["Alpha", "Gamma"]
    assert names({"propertyName": "dealname", "operator": "IN", "values": ["beta", "gamma"]}) == [
        "Beta",
        "Gamma",
    ]
    assert names({"propertyName": "dealname", "operator": "NOT_IN", "values": ["beta"]}) == [
        "Alpha",
        "Delta",
        "Gamma",
    ]
    assert names({"propertyName": "amount", "operator": "HAS_PROPERTY"}) == ["Alpha", "Beta", "Gamma"]
    assert names({"propertyName": "amount", "operator": "NOT_HAS_PROPERTY"}) == ["Delta"]
    assert names(
        {"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"},
        {"propertyName": "amount", "operator": "HAS_PROPERTY"},
    ) == ["Alpha", "Gamma"]
    by_amount = names(
        {"propertyName": "amount", "operator": "HAS_PROPERTY"},
        sorts=[{"propertyName": "amount", "direction": "DESCENDING"}],
    )
    assert by_amount == ["Beta", "Gamma", "Alpha"]
    page = search(PublicObjectSearchRequest(limit=2, sorts=["dealname"]))
    assert page.total == 4 and page.paging.next.after == "2"
    for bad in (PublicObjectSearchRequest(limit=201), PublicObjectSearchRequest(limit=100, after="10000")):
        with pytest.raises(Exception) as exc:
            search(bad)
        assert exc.value.status == 400


def test_archived_records_leave_lists_and_search(sandbox_session: SandboxHandle) -> None:
    client = sandbox_session.client()
    keep = client.crm.contacts.basic_api.create({"properties": {"email": "keep@x.com"}})
    gone = client.crm.contacts.basic_api.create({"properties": {"email": "gone@x.com"}})
    client.crm.contacts.basic_api.archive(gone.id)
    assert [r.id for r in client.crm.contacts.get_all()] == [keep.id]
    assert [r.id for r in client.crm.contacts.search_api.do_search(PublicObjectSearchRequest()).results] == [
        keep.id
    ]
    # the archived contact's email is free again
    assert client.crm.contacts.basic_api.create({"properties": {"email": "gone@x.com"}}).id != gone.id


SEARCH_DELAY = 4.0


def test_search_sees_new_writes_only_after_the_delay(tmp_path: Path) -> None:
    """The "not yet" searches run right after the write; the delay is long enough that no machine load puts
    them past it (the sleeps only make time pass: waiting longer never changes the outcome)."""
    with running_sandbox(tmp_path / "h.db", search_delay=SEARCH_DELAY) as sb:
        client = sb.client()
        rec = client.crm.contacts.basic_api.create(
            {"properties": {"email": "late@x.com", "firstname": "Old"}}
        )
        req = PublicObjectSearchRequest(properties=["firstname"])
        assert client.crm.contacts.search_api.do_search(req).total == 0
        assert client.crm.contacts.basic_api.get_by_id(rec.id).id == rec.id  # reads are immediate
        time.sleep(SEARCH_DELAY + 0.1)
        assert client.crm.contacts.search_api.do_search(req).results[0].properties["firstname"] == "Old"
        client.crm.contacts.basic_api.update(rec.id, {"properties": {"firstname": "New"}})
        assert client.crm.contacts.search_api.do_search(req).results[0].properties["firstname"] == "Old"
        time.sleep(SEARCH_DELAY + 0.1)
        assert client.crm.contacts.search_api.do_search(req).results[0].properties["firstname"] == "New"


def test_orders_upsert_through_generic_objects_api(sandbox_session: SandboxHandle) -> None:
    unique_property(sandbox_session, "orders", "fp_order_id")
    api = sandbox_session.client().crm.objects.batch_api
    body = ObjUpsertBatch(
        inputs=[ObjUpsert(id_property="fp_order_id", id="O-1", properties={"hs_order_name": "#1"})]
    )
    assert api.upsert("orders", body).results[0].new is True
    assert api.upsert("orders", body).results[0].new is False


def test_batch_update_by_id_and_unique_property_partial(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", batch_errors="partial") as sb:
        _batch_update_by_id_and_unique_property(sb)


def _batch_update_by_id_and_unique_property(sandbox_session: SandboxHandle) -> None:
    from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput

    unique_property(sandbox_session, "contacts", "fp_customer_id")
    created = upsert_contacts(
        sandbox_session, [("S1:C1", {"email": "u1@x.com"}), ("S1:C2", {"email": "u2@x.com"})]
    )
    batch = sandbox_session.client().crm.contacts.batch_api
    result = batch.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=created.results[0].id, properties={"city": "Basel"}),
                SimplePublicObjectBatchInput(
                    id="S1:C2", id_property="fp_customer_id", properties={"email": "u1@x.com"}
                ),
                SimplePublicObjectBatchInput(id="999", properties={"city": "Nowhere"}),
            ]
        )
    )
    assert [r.properties["city"] for r in result.results] == ["Basel"]
    assert sorted(e.category for e in result.errors) == ["CONFLICT", "OBJECT_NOT_FOUND"]


def test_archived_listing_query_search_and_dated_associations(sandbox_session: SandboxHandle) -> None:
    client = sandbox_session.client()
    a = client.crm.contacts.basic_api.create({"properties": {"email": "zoe@shop.ch", "firstname": "Zoe"}})
    b = client.crm.contacts.basic_api.create({"properties": {"email": "max@shop.ch", "firstname": "Max"}})
    client.crm.contacts.basic_api.archive(b.id)
    assert [r.id for r in client.crm.contacts.basic_api.get_page(archived=True).results] == [b.id]
    found = client.crm.contacts.search_api.do_search(PublicObjectSearchRequest(query="zo"))
    assert [r.id for r in found.results] == [a.id]
    company = client.crm.companies.basic_api.create({"properties": {"name": "Shop AG"}})
    made = client.api_request(
        {
            "method": "POST",
            "path": "/crm/associations/2026-03/contacts/companies/batch/associate/default",
            "body": {"inputs": [{"from": {"id": a.id}, "to": {"id": company.id}}]},
        }
    )
    assert made.status_code == 200
    listed = client.api_request(
        {"method": "GET", "path": f"/crm/objects/2026-03/companies/{company.id}/associations/contacts"}
    )
    assert listed.json()["results"][0]["associationTypes"][0]["typeId"] == 280
