"""Pure SAP/FocusPoint → HubSpot mapping: canonical frames + panel settings in, payload frames out.

No I/O. Every function is vectorized polars so a million customers map in seconds. The contract the sync
engine relies on is ``Mapped`` plus the ``ID_PROPERTY`` / ``PROPERTIES`` / ``REFERENCES`` constants.
"""

from fp_hubspot_assets.mapping.commerce import map_carts, map_orders
from fp_hubspot_assets.mapping.common import not_sent
from fp_hubspot_assets.mapping.companies import map_companies
from fp_hubspot_assets.mapping.contacts import map_contacts
from fp_hubspot_assets.mapping.deals import deal_sources, map_deals
from fp_hubspot_assets.mapping.line_items import map_line_items
from fp_hubspot_assets.mapping.model import (
    ALIASES_SCHEMA,
    CUSTOM_PROPERTY_LABELS,
    DELETED_FLAG,
    EXCLUDED,
    ID_PROPERTY,
    ISSUES_SCHEMA,
    OBJECT_TYPES,
    PROPERTIES,
    REFERENCES,
    REPAIRED,
    SKIPPED,
    CustomProperty,
    Mapped,
    custom_properties,
)
from fp_hubspot_assets.mapping.products import map_products
from fp_hubspot_assets.mapping.stages import deal_stage_for, unmapped_statuses

__all__ = [
    "ALIASES_SCHEMA",
    "CUSTOM_PROPERTY_LABELS",
    "DELETED_FLAG",
    "EXCLUDED",
    "ID_PROPERTY",
    "ISSUES_SCHEMA",
    "OBJECT_TYPES",
    "PROPERTIES",
    "REFERENCES",
    "REPAIRED",
    "SKIPPED",
    "CustomProperty",
    "Mapped",
    "custom_properties",
    "deal_sources",
    "deal_stage_for",
    "map_carts",
    "map_companies",
    "map_contacts",
    "map_deals",
    "map_line_items",
    "map_orders",
    "map_products",
    "not_sent",
    "unmapped_statuses",
]
