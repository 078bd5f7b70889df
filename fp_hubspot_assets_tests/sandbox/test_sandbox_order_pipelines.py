"""Order pipelines in the sandbox, through the official SDK: the default order pipeline, creating our own, and
HubSpot's refusal of an order stage id that is not in the order's pipeline (as for deals)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hubspot.crm.objects import ApiException as ObjectsApiException
from hubspot.crm.objects import SimplePublicObjectInput, SimplePublicObjectInputForCreate
from hubspot.crm.pipelines import ApiException as PipelinesApiException
from hubspot.crm.pipelines import PipelineInput, PipelineStageInput

from hubspot_sandbox.testing import SandboxHandle, running_sandbox


def _pipeline(label: str, *stages: str) -> PipelineInput:
    return PipelineInput(label=label, display_order=1,
                         stages=[PipelineStageInput(label=s, display_order=i, metadata={}) for i, s in enumerate(stages)])


def test_orders_have_a_default_pipeline_and_refuse_a_stage_of_another(sandbox_session: SandboxHandle) -> None:
    client = sandbox_session.client()
    pipelines, orders = client.crm.pipelines.pipelines_api, client.crm.objects.basic_api
    default = pipelines.get_all("orders").results
    assert [p.id for p in default] == ["default"] and default[0].stages
    plain = orders.create("orders", SimplePublicObjectInputForCreate(properties={"hs_order_name": "plain"}))
    assert orders.get_by_id("orders", plain.id, properties=["hs_pipeline"]).properties["hs_pipeline"] == "default"

    ours = pipelines.create("orders", _pipeline("Web orders", "Pending", "Shipped"))
    assert {p.id for p in pipelines.get_all("orders").results} == {"default", ours.id}
    shipped = ours.stages[1].id
    order = orders.create("orders", SimplePublicObjectInputForCreate(
        properties={"hs_order_name": "ours", "hs_pipeline": ours.id, "hs_pipeline_stage": shipped}))
    assert order.properties["hs_pipeline_stage"] == shipped

    foreign = default[0].stages[0].id
    with pytest.raises(ObjectsApiException) as exc:  # a default-pipeline stage in our pipeline
        orders.create("orders", SimplePublicObjectInputForCreate(
            properties={"hs_order_name": "bad", "hs_pipeline": ours.id, "hs_pipeline_stage": foreign}))
    assert exc.value.status == 400 and "hs_pipeline_stage" in exc.value.body
    with pytest.raises(ObjectsApiException) as exc:  # an update checks the stage against the order's pipeline
        orders.update("orders", order.id, SimplePublicObjectInput(properties={"hs_pipeline_stage": foreign}))
    assert exc.value.status == 400 and "hs_pipeline_stage" in exc.value.body
    with pytest.raises(ObjectsApiException) as exc:  # our stage without our pipeline: the default has no such stage
        orders.create("orders", SimplePublicObjectInputForCreate(properties={"hs_pipeline_stage": shipped}))
    assert exc.value.status == 400
    with pytest.raises(ObjectsApiException) as exc:
        orders.create("orders", SimplePublicObjectInputForCreate(properties={"hs_pipeline": "nope"}))
    assert exc.value.status == 400 and "hs_pipeline" in exc.value.body
    moved = orders.update("orders", plain.id, SimplePublicObjectInput(
        properties={"hs_pipeline": ours.id, "hs_pipeline_stage": ours.stages[0].id}))
    assert moved.properties["hs_pipeline_stage"] == ours.stages[0].id


def test_free_tier_cannot_add_an_order_pipeline(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", tier="free") as sb:
        with pytest.raises(PipelinesApiException) as exc:
            sb.client().crm.pipelines.pipelines_api.create("orders", _pipeline("Second", "A"))
        assert exc.value.status == 400 and "order pipeline" in exc.value.body
