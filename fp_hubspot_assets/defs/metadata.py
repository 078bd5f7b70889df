"""Helpers that turn frames into Dagster metadata (the grids admins read in the UI)."""

from __future__ import annotations

import polars as pl
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

GRID_ROWS = 500  # the UI grid shows the first rows; the integration log holds them all


def table_metadata(frame: pl.DataFrame, limit: int = GRID_ROWS) -> MetadataValue:
    """A polars frame as a Dagster table (rendered as a grid), at most ``limit`` rows, values as text."""
    head = frame.head(limit)
    schema = TableSchema(columns=[TableColumn(name=c, type="string") for c in head.columns])
    records = [
        TableRecord({k: ("" if v is None else str(v)[:300]) for k, v in row.items()}) for row in head.iter_rows(named=True)
    ]
    return MetadataValue.table(records=records, schema=schema)
