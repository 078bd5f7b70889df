"""Properties, groups, pipelines and associations v4 of the sandbox, through the official SDK."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hubspot.crm.associations.v4 import (
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
)
from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealCreate
from hubspot.crm.pipelines import ApiException as PipelinesApiException
from hubspot.crm.pipelines import PipelineInput, PipelineStageInput
from hubspot.crm.properties import ApiException as PropertiesApiException
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from hubspot_sandbox.testing import SandboxHandle, running_sandbox


def prop(name: str, unique: bool = False, group: str = "contactinformation") -> PropertyCreate:
    return PropertyCreate(
        name=name,
        label=name.title(),
        type="string",
        field_type="text",
        group_name=group,
        has_unique_value=unique,
    )


def test_property_and_group_lifecycle(sandbox_session: SandboxHandle) -> None:
    client = sandbox_session.client()
    groups = client.crm.properties.groups_api
    groups.create("contacts", PropertyGroupCreate(name="focuspoint", label="FocusPoint"))
    assert "focuspoint" in {g.name for g in groups.get_all("contacts").results}
    with pytest.raises(PropertiesApiException) as exc:
        groups.create("contacts", PropertyGroupCreate(name="focuspoint", label="Again"))
    assert exc.value.status == 409
    core = client.crm.properties.core_api
    created = core.create("contacts", prop("fp_customer_id", unique=True, group="focuspoint"))
    assert created.has_unique_value is True and created.group_name == "focuspoint"
    assert core.get_by_name("contacts", "fp_customer_id").has_unique_value is True
    with pytest.raises(PropertiesApiException) as exc:
        core.create("contacts", prop("fp_customer_id"))
    assert exc.value.status == 409
    with pytest.raises(PropertiesApiException) as exc:
        core.create("contacts", prop("fp_other", group="no_such_group"))
    assert exc.value.status == 400


def test_at_most_ten_unique_properties_per_type(sandbox_session: SandboxHandle) -> None:
    core = sandbox_session.client().crm.properties.core_api
    for i in range(10):
        core.create("companies", prop(f"uniq_{i}", unique=True, group="companyinformation"))
    with pytest.raises(PropertiesApiException) as exc:
        core.create("companies", prop("uniq_10", unique=True, group="companyinformation"))
    assert exc.value.status == 400
    core.create("companies", prop("not_unique", group="companyinformation"))  # plain ones still fine


def test_enumeration_property_validates_options(sandbox_session: SandboxHandle) -> None:
    client = sandbox_session.client()
    client.crm.properties.core_api.create(
        "contacts",
        PropertyCreate(
            name="fp_role",
            label="Role",
            type="enumeration",
            field_type="select",
            group_name="contactinformation",
            options=[
                {"label": "Guest", "value": "guest", "hidden": False},
                {"label": "Admin", "value": "admin", "hidden": False},
            ],
        ),
    )
    assert (
        client.crm.contacts.basic_api.create({"properties": {"fp_role": "admin"}}).properties["fp_role"]
        == "admin"
    )
    with pytest.raises(Exception) as exc:
        client.crm.contacts.basic_api.create({"properties": {"fp_role": "vendor"}})
    assert exc.value.status == 400 and "INVALID_OPTION" in orjson.loads(exc.value.body)["message"]


def _stages(*labels: str, probability: bool = True) -> list[PipelineStageInput]:
    return [
        PipelineStageInput(
            label=label, display_order=i, metadata={"probability": "0.5"} if probability else {}
        )
        for i, label in enumerate(labels)
    ]


def test_deal_pipeline_create_list_get(sandbox_session: SandboxHandle) -> None:
    api = sandbox_session.client().crm.pipelines.pipelines_api
    created = api.create(
        "deals",
        PipelineInput(
            label="Web store",
            display_order=1,
            stages=_stages("Checkout Abandoned", "Checkout Pending", "Shipped"),
        ),
    )
    assert created.id != "default" and created.id.isdigit()
    assert [s.label for s in created.stages] == ["Checkout Abandoned", "Checkout Pending", "Shipped"]
    assert len({s.id for s in created.stages}) == 3
    assert {p.id for p in api.get_all("deals").results} == {"default", created.id}
    assert api.get_by_id("deals", created.id).stages[1].metadata["probability"] == "0.5"
    deal = sandbox_session.client().crm.deals.basic_api.create(
        DealCreate(
            properties={"dealname": "cart 1", "pipeline": created.id, "dealstage": created.stages[0].id}
        )
    )
    assert deal.properties["dealstage"] == created.stages[0].id
    with pytest.raises(PipelinesApiException) as exc:
        api.create(
            "deals",
            PipelineInput(label="No probability", display_order=2, stages=_stages("A", probability=False)),
        )
    assert exc.value.status == 400
    with pytest.raises(PipelinesApiException) as exc:
        api.create("deals", PipelineInput(label="Web store", display_order=3, stages=_stages("A")))
    assert exc.value.status == 409


def test_free_tier_keeps_a_single_deal_pipeline(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", tier="free") as sb:
        with pytest.raises(PipelinesApiException) as exc:
            sb.client().crm.pipelines.pipelines_api.create(
                "deals", PipelineInput(label="Second", display_order=1, stages=_stages("A"))
            )
        assert exc.value.status == 400


def _records(sb: SandboxHandle) -> dict[str, str]:
    client = sb.client()
    return {
        "contact": client.crm.contacts.basic_api.create({"properties": {"email": "c@x.com"}}).id,
        "company": client.crm.companies.basic_api.create({"properties": {"name": "Acme"}}).id,
        "deal": client.crm.deals.basic_api.create({"properties": {"dealname": "D"}}).id,
        "line_item": client.crm.line_items.basic_api.create({"properties": {"name": "L", "price": "5"}}).id,
    }


def test_associate_default_is_stored_both_ways(sandbox_session: SandboxHandle) -> None:
    ids = _records(sandbox_session)
    batch = sandbox_session.client().crm.associations.v4.batch_api
    result = batch.create_default(
        "contacts",
        "companies",
        BatchInputPublicDefaultAssociationMultiPost(
            inputs=[{"from": {"id": ids["contact"]}, "to": {"id": ids["company"]}}]
        ),
    )
    assert {r.association_spec.association_type_id for r in result.results} == {279, 280}
    contact = sandbox_session.objects("contacts")[0]
    company = sandbox_session.objects("companies")[0]
    assert contact["associations"] == {"companies": [{"id": ids["company"], "types": [279]}]}
    assert company["associations"] == {"contacts": [{"id": ids["contact"], "types": [280]}]}


def test_batch_create_with_type_ids_and_batch_read(sandbox_session: SandboxHandle) -> None:
    ids = _records(sandbox_session)
    v4 = sandbox_session.client().crm.associations.v4
    spec = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 20}]
    created = v4.batch_api.create(
        "line_items",
        "deals",
        BatchInputPublicAssociationMultiPost(
            inputs=[{"from": {"id": ids["line_item"]}, "to": {"id": ids["deal"]}, "types": spec}]
        ),
    )
    assert created.results[0].to_object_id == ids["deal"]
    v4.batch_api.create(
        "deals",
        "contacts",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                {
                    "from": {"id": ids["deal"]},
                    "to": {"id": ids["contact"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}],
                }
            ]
        ),
    )
    read = v4.batch_api.get_page(
        "deals",
        "line_items",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": ids["deal"]}, {"id": ids["company"]}]),
    )
    assert read.results[0].to[0].to_object_id == ids["line_item"]
    assert read.results[0].to[0].association_types[0].type_id == 19
    assert len(read.errors) == 1  # the company id has no line items
    listed = v4.basic_api.get_page("contacts", ids["contact"], "deals")
    assert [(r.to_object_id, r.association_types[0].type_id) for r in listed.results] == [(ids["deal"], 4)]
    wrong = v4.batch_api.create(
        "deals",
        "contacts",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                {
                    "from": {"id": ids["deal"]},
                    "to": {"id": ids["contact"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                }
            ]
        ),
    )
    assert wrong.num_errors == 1


def test_batch_read_allows_1000_ids_but_not_more(sandbox_session: SandboxHandle) -> None:
    batch = sandbox_session.client().crm.associations.v4.batch_api
    ok = batch.get_page(
        "deals",
        "contacts",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": str(i)} for i in range(1000)]),
    )
    assert len(ok.errors) == 1000
    with pytest.raises(Exception) as exc:
        batch.get_page(
            "deals",
            "contacts",
            BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": str(i)} for i in range(1001)]),
        )
    assert exc.value.status == 400


def test_inline_associations_on_create(sandbox_session: SandboxHandle) -> None:
    client = sandbox_session.client()
    company = client.crm.companies.basic_api.create({"properties": {"name": "Acme"}})
    contact = client.crm.contacts.basic_api.create(
        {
            "properties": {"email": "in@x.com"},
            "associations": [
                {
                    "to": {"id": company.id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                }
            ],
        }
    )
    fetched = client.crm.contacts.basic_api.get_by_id(contact.id, associations=["companies"])
    assert fetched.associations["companies"].results[0].id == company.id
    with pytest.raises(Exception) as exc:
        client.crm.contacts.basic_api.create(
            {
                "properties": {"email": "bad@x.com"},
                "associations": [
                    {
                        "to": {"id": "99"},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                    }
                ],
            }
        )
    assert exc.value.status == 400
    assert len(sandbox_session.objects("contacts")) == 1
