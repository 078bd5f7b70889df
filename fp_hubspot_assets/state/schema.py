"""The one module that owns every table of the state store (SQLAlchemy 2 Core, SQLite or PostgreSQL).

The state store is a *cache* of HubSpot's truth plus our own bookkeeping (docs/identity.md): losing it
never creates duplicates in HubSpot, because every write is an upsert on a unique property we own (or, where
an account refuses one, a create guarded by hubspot/create_guard.py); it only costs a re-read. Nothing outside this module declares a table; other modules use
``StateStore`` (store.py) and, for ad-hoc reads, the ``Table`` objects below.

Table names carry an ``fp_`` prefix so the store can share a PostgreSQL database (e.g. Dagster's own
storage database) without clashing with anyone else's tables.

Conventions
-----------
- ``object_type`` is a HubSpot object type name as the sync code uses it (``contacts``, ``companies``,
  ``products``, ``deals``, ``line_items``); ``source_key`` is our stable key from source_model.py
  (``W12``, ``BPC0001``, ``I100#Color: Red``, ``C77`` …); ``hubspot_id`` is HubSpot's record id as text.
- Timestamps are UTC. They are stored naive (``UtcDateTime``) because SQLite has no time zone type, and
  come back timezone-aware (UTC) on both backends, so callers never see a difference.
- No CHECK constraints on vocabularies (e.g. log actions): the vocabularies are validated in Python, and a
  new value then needs no schema migration. ``SCHEMA_VERSION`` is stamped in ``setup_state`` so a newer
  layout is detected instead of being misread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

SCHEMA_VERSION = 1
"""Bump when a table changes shape; StateStore refuses a store stamped with a newer version."""

SCHEMA_VERSION_KEY = "_state_schema_version"
"""The ``setup_state`` key holding SCHEMA_VERSION (leading underscore: bookkeeping, not a setup value)."""

LOG_ACTIONS = (
    "created", "updated", "unchanged", "skipped", "failed", "adopted", "repaired", "archived", "merged", "flagged",
)
"""What a run did to one record (``integration_log.action``):

- created / updated / unchanged: the normal outcomes of an upsert (unchanged = same payload hash, not sent);
- skipped: deliberately not sent (tier gating, role filter, baseline of "ignore existing deals", …);
- failed: HubSpot rejected it; the reason is in error_category/message and the record is in ``failures``;
- adopted: an existing HubSpot record (same email, or found by our unique property) was taken over;
- repaired: the ID map disagreed with HubSpot and was corrected;
- archived: the record was archived in HubSpot (or found archived there);
- merged: the record became part of another key's record (an order linked late to its cart's deal);
- flagged: its source vanished and ``fp_deleted_in_source`` was set (the ``deletes: flag`` policy).
"""


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A UTC instant: aware datetimes are converted to UTC and stored naive; read back as aware UTC."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC) to the state store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

id_map = sa.Table(
    "fp_id_map",
    metadata,
    sa.Column("object_type", sa.String, primary_key=True),
    sa.Column("source_key", sa.String, primary_key=True),
    sa.Column("hubspot_id", sa.String, nullable=False),
    # sha of the outgoing properties last accepted by HubSpot; NULL = id known (adopted, pulled at first
    # setup) but our content never sent, so the next run must send it.
    sa.Column("payload_hash", sa.String, nullable=True),
    sa.Column("synced_at", UtcDateTime, nullable=False),
    sa.Column("run_id", sa.String, nullable=True),  # the Dagster run that last wrote the row
    # one HubSpot record belongs to one source key: two keys on one record would fight over its properties
    sa.UniqueConstraint("object_type", "hubspot_id"),
    comment="source key <-> HubSpot id per object type, with the hash of what was last synced",
)

associations = sa.Table(
    "fp_associations",
    metadata,
    sa.Column("from_type", sa.String, primary_key=True),
    sa.Column("from_key", sa.String, primary_key=True),
    sa.Column("to_type", sa.String, primary_key=True),
    sa.Column("to_key", sa.String, primary_key=True),
    sa.Column("type_id", sa.Integer, primary_key=True, autoincrement=False),  # HubSpot association type id
    sa.Column("synced_at", UtcDateTime, nullable=False),
    comment="associations known to exist in HubSpot (by source keys), so they are not re-sent",
)

integration_log = sa.Table(
    "fp_integration_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("logged_at", UtcDateTime, nullable=False),
    sa.Column("object_type", sa.String, nullable=False),
    sa.Column("source_key", sa.String, nullable=False),
    sa.Column("action", sa.String, nullable=False),  # one of LOG_ACTIONS
    sa.Column("hubspot_id", sa.String, nullable=True),
    sa.Column("error_category", sa.String, nullable=True),  # HubSpot's category, e.g. VALIDATION_ERROR
    sa.Column("message", sa.Text, nullable=True),
    sa.Index(None, "run_id"),
    sa.Index(None, "object_type", "source_key"),
    comment="one row per record per run: the panel's Integration Log Tracing",
)

sent_creates = sa.Table(
    "fp_sent_creates",
    metadata,
    sa.Column("object_type", sa.String, primary_key=True),
    sa.Column("source_key", sa.String, primary_key=True),
    sa.Column("run_id", sa.String, nullable=True),
    sa.Column("sent_at", UtcDateTime, nullable=False),
    comment="keys sent to HubSpot in a create batch whose answer is not recorded yet: what a killed run may "
    "have created (searched before creating them again where no unique property guards the type)",
)

# A record HubSpot keeps rejecting with unchanged content is retried this many runs, then left alone
# (logged as skipped) until its data changes.
MAX_FAILED_ATTEMPTS = 3
failures = sa.Table(
    "fp_failures",
    metadata,
    sa.Column("object_type", sa.String, primary_key=True),
    sa.Column("source_key", sa.String, primary_key=True),
    # the payload HubSpot rejected: a different hash next run means the data changed, so retry at once
    sa.Column("payload_hash", sa.String, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),  # consecutive rejections of this same payload
    sa.Column("last_category", sa.String, nullable=True),
    sa.Column("last_message", sa.Text, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    comment="records HubSpot rejected, retried next run (payload changed) or up to a max attempts",
)

cursors = sa.Table(
    "fp_cursors",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    comment="sensor and incremental-read cursors",
)

setup_state = sa.Table(
    "fp_setup_state",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # JSON text
    sa.Column("updated_at", UtcDateTime, nullable=False),
    comment="one-time HubSpot setup facts: pipeline and stage ids, properties created, first setup done",
)

baseline = sa.Table(
    "fp_baseline",
    metadata,
    sa.Column("object_type", sa.String, primary_key=True),
    sa.Column("source_key", sa.String, primary_key=True),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    comment='records that existed at first setup with "ignore existing deals": never sent',
)

oauth_tokens = sa.Table(
    "fp_oauth_tokens",
    metadata,
    sa.Column("account", sa.String, primary_key=True),  # HubSpot portal id (or a configured account name)
    sa.Column("refresh_token_enc", sa.Text, nullable=False),  # Fernet ciphertext, see crypto.py
    sa.Column("access_token_enc", sa.Text, nullable=True),
    sa.Column("expires_at", UtcDateTime, nullable=True),  # of the access token
    sa.Column("updated_at", UtcDateTime, nullable=False),
    comment="OAuth tokens of the public-app integration mode, encrypted with FP_STATE_KEY",
)
