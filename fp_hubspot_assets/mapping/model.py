"""The mapping contract: what every ``map_*`` function returns and which HubSpot properties it writes.

The constants come from the object-type registry (``fp_hubspot_assets/objects.py``): a property added to a
mapper must be declared there first — ``finalize`` rejects columns that are not declared.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from fp_hubspot_assets.objects import CUSTOM_PROPERTY_LABELS as CUSTOM_PROPERTY_LABELS
from fp_hubspot_assets.objects import DELETED_FLAG as DELETED_FLAG
from fp_hubspot_assets.objects import OBJECT_TYPES as OBJECT_TYPES
from fp_hubspot_assets.objects import SPECS

# The registry (objects.py) as the mapping contract's tables.
ID_PROPERTY: dict[str, str] = {t: s.id_property for t, s in SPECS.items()}
PROPERTIES: dict[str, list[str]] = {t: list(s.properties) for t, s in SPECS.items()}  # id property first
REFERENCES: dict[str, list[str]] = {t: list(s.reference_columns) for t, s in SPECS.items()}
FLAGGED_TYPES = tuple(t for t, s in SPECS.items() if s.deleted_flag)

SKIPPED = "skipped"  # not sent at all: the input cannot become a valid record
REPAIRED = "repaired"  # sent, with a field cleared or fixed
EXCLUDED = "excluded"  # not sent because a panel setting says so

ISSUES_SCHEMA = pl.Schema({"source_key": pl.String, "action": pl.String, "reason": pl.String})
ALIASES_SCHEMA = pl.Schema({"source_key": pl.String, "survivor_key": pl.String})


@dataclass(frozen=True)
class CustomProperty:
    """One property the HubSpot set-up must create before the first upsert."""

    object_type: str
    name: str
    label: str
    unique: bool
    kind: str = "string"


def custom_properties(object_type: str) -> list[CustomProperty]:
    """The ``fp_*`` properties of ``object_type``; the id property is the unique one."""
    props = [
        CustomProperty(object_type, name, CUSTOM_PROPERTY_LABELS[name], name == ID_PROPERTY[object_type])
        for name in PROPERTIES[object_type]
        if name.startswith("fp_")
    ]
    if object_type in FLAGGED_TYPES:
        props.append(CustomProperty(object_type, DELETED_FLAG, CUSTOM_PROPERTY_LABELS[DELETED_FLAG], False, "date"))
    return props


@dataclass(frozen=True)
class Mapped:
    """HubSpot payloads for one object type.

    ``records``: ``source_key`` (unique, non-null), one non-null ``pl.String`` column per property in
    ``PROPERTIES[object_type]`` ("" means empty/clear), then the nullable reference columns of
    ``REFERENCES[object_type]``. ``issues``: one row per problem (``source_key``, ``action``, ``reason``).
    ``aliases``: ``source_key`` → ``survivor_key``: for contacts the merged duplicates, for deals the
    orders that became part of a cart's deal (a late link; see docs/identity.md).
    ``parents``: child types only (line items): the parent keys whose children ``records`` lists in full;
    a synced child of one of them that is neither in ``records`` nor rejected left the source.
    """

    object_type: str
    records: pl.DataFrame
    issues: pl.DataFrame
    aliases: pl.DataFrame | None = None
    parents: pl.Series | None = None

    def keys(self) -> pl.Series:
        """The source keys that will be sent."""
        return self.records.get_column("source_key")

    def present_keys(self) -> pl.Series:
        """Every key the source still has: sent, rejected, excluded or merged into another (aliases).
        A synced record whose key is not here vanished from the source."""
        parts = [self.keys(), self.issues.get_column("source_key")]
        if self.aliases is not None:
            parts.append(self.aliases.get_column("source_key"))
        return pl.concat(parts).unique()
