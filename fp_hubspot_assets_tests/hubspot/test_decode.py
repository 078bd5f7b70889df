"""Answers decode into the SDK's models; timestamps through datetime.fromisoformat, as dateutil read them."""

from __future__ import annotations

import json

import pytest
from dateutil.parser import parse as dateutil_parse

from fp_hubspot_assets.hubspot.client import decode


def _answer(created: str) -> bytes:
    record = {"id": "101", "properties": {"fp_line_item_id": "C1:L0"}, "createdAt": created,
              "updatedAt": created, "archived": False, "new": True}
    return json.dumps({"status": "COMPLETE", "results": [record], "startedAt": created,
                       "completedAt": created}).encode()


@pytest.mark.parametrize("stamp", [
    "2026-11-29T02:22:43.123Z",  # HubSpot's usual form
    "2026-11-29T02:22:43Z",
    "2026-11-29T02:22:43.123456+00:00",
    "2026-11-29T03:22:43.1+01:00",
    "Sun, 29 Nov 2026 02:22:43 GMT",  # not ISO 8601: still read, by dateutil
])
def test_timestamps_decode_as_the_sdk_read_them(stamp: str) -> None:
    answer = decode(_answer(stamp), ("objects", "BatchResponseSimplePublicUpsertObject"))
    record = answer.results[0]
    assert (record.id, record.properties, record.new) == ("101", {"fp_line_item_id": "C1:L0"}, True)
    assert record.created_at == dateutil_parse(stamp) and record.created_at.utcoffset() is not None
    assert answer.completed_at == dateutil_parse(stamp)
