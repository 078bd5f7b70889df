"""Which keys of a create batch may already have a record in HubSpot, for types without a unique property.

Where HubSpot refuses unique-value properties (products and line items in some accounts, see
properties.NO_UNIQUE_FALLBACK), it cannot upsert by our key, so a create whose answer a kill lost would be
created a second time by the next run. The guard prevents that without a search before every batch:

- before a batch goes out, its keys are noted in the state store (``fp_sent_creates``), and they are cleared
  in the same transaction that records the batch's answer — so a key still noted was sent by a run that
  never recorded what HubSpot did with it;
- a key is looked up by search before it is created only if the ID map knows it (its record may have been
  deleted or re-created in HubSpot since) or it is still noted; every other key is created directly, so a
  first sync costs writes only.

That trusts the state store to know every record that carries our id property. Once per guard (one object
type in one run), before anything is created, one search request compares HubSpot's count of records having
the id property with the ID map's count plus the noted keys: if HubSpot holds more (a state store restored
from an older copy, replaced, or shared by two deployments), every key is searched, as without the guard.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TypeVar

from fp_hubspot_assets.hubspot.client import HubSpotClient
from fp_hubspot_assets.state.store import StateStore

Batch = TypeVar("Batch", bound=Sequence[tuple[str, dict[str, str]]])  # (source key, properties) pairs


class CreateGuard:
    def __init__(
        self,
        client: HubSpotClient,
        state: StateStore,
        object_type: str,
        id_property: str,
        known: Iterable[str],
        run_id: str,
        progress: Callable[[str], None],
    ) -> None:
        self.client, self.state, self.run_id, self.progress = client, state, run_id, progress
        self.object_type, self.id_property = object_type, id_property
        self.unanswered = state.unanswered_creates(object_type)  # read before this run notes anything
        self.unsure = set(known) | self.unanswered
        self.trusted: bool | None = None  # decided by the first batch that creates, before it does
        self._lock = threading.Lock()

    def noted(self, batch: Batch) -> Batch:
        """The batch, its keys noted as sent: called on the sync's thread just before it goes to a sender. Not
        once HubSpot has accepted an upsert by our id property: it is unique there, and an upsert repeated after
        a lost answer finds the record it made."""
        if not self.client.upserts_by(self.object_type, self.id_property):
            self.state.note_sent_creates(self.object_type, [key for key, _ in batch], self.run_id)
        return batch

    def answered(self, keys: Sequence[str]) -> None:
        """Called inside the transaction that records the batch's answer."""
        self.state.clear_sent_creates(self.object_type, keys)

    def may_exist(self, keys: Sequence[str]) -> Collection[str]:
        """The keys to search for before creating (the client's ``may_exist``; called from sender threads)."""
        with self._lock:
            if self.trusted is None:
                self.trusted = self._state_knows_every_record()
        return keys if not self.trusted else [key for key in keys if key in self.unsure]

    def _state_knows_every_record(self) -> bool:
        in_hubspot = self.client.count_having(self.object_type, self.id_property)
        known = self.state.count_ids(self.object_type) + len(self.unanswered)
        if in_hubspot <= known:
            return True
        self.progress(
            f"{self.object_type}: HubSpot holds {in_hubspot} records with {self.id_property}, the state store knows "
            f"{known}: every key is searched before it is created this run (was the state store replaced or "
            "restored from an older copy?)"
        )
        return False
