"""One HubSpot record, one key of ours: the email rule for contacts (docs/identity.md).

HubSpot keeps a contact's email unique. An upsert whose email another contact holds answers 409 with
"Existing ID: N". What that means depends on who owns N in our state store:

- nobody (a contact made by hand, or pulled at first set-up): we **adopt** N — stamp our key on it;
- the same key: N lost our id property (edited by hand); adopt it back;
- another key of ours (the *holder*): the email is moving between two of our people. It is a **claim**,
  held back until the holder has **released** the email, then written again. Never an adoption: that
  would hand one person's contact, company and deals to another.

Claims are settled after every batch of the run has been written, so a one-way move (the holder's new
email was written in the same run) costs one extra upsert. A swap or a chain (the holder's own new email
is held by someone else) is released first: the holder's email is cleared, then every claim and every
released holder is written with its real payload — all in the same run. A holder that is not synced this
run (excluded, rejected, gone from the source) keeps its email: the claim fails with a reason naming the
email, both keys and the HubSpot id.

Crash safety: a holder's remembered hash is cleared *before* its email is, so a kill between the release
and the final write re-sends the holder next run; claims are never recorded until they landed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from fp_hubspot_assets import failpoints
from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.client import EXISTING_ID, BatchOutcome, HubSpotClient
from fp_hubspot_assets.state.store import StateStore

CONFLICT = "EMAIL_CONFLICT"
BATCH = ep.OBJECTS_BATCH_UPDATE.batch_size


@dataclass(frozen=True)
class Claim:
    """``key`` wants an email that HubSpot contact ``hubspot_id`` holds, and our ``holder`` owns that contact."""

    key: str
    props: dict[str, str]
    hubspot_id: str
    holder: str

    def conflict(self, why: str) -> tuple[str, str]:
        email = self.props.get("email", "")
        return (
            CONFLICT,
            f"email {email} is held by HubSpot contact {self.hubspot_id}, which belongs to {self.holder}; "
            f"{self.key} cannot take it: {why}",
        )


def sort_conflicts(
    client: HubSpotClient,
    state: StateStore,
    object_type: str,
    batch: Sequence[tuple[str, dict[str, str]]],
    outcome: BatchOutcome,
    claims: list[Claim],
) -> None:
    """Resolve the batch's "already exists" rejections: adopt records no other key owns, hold claims on
    records another key owns (removed from ``outcome`` until ``settle_claims``)."""
    conflicts = {key: m.group(1) for key, (_c, message) in outcome.failed.items() if (m := EXISTING_ID.search(message))}
    if not conflicts:
        return
    owners = state.owners(object_type, conflicts.values())
    props = dict(batch)
    adopt: list[tuple[str, str, dict[str, str]]] = []
    for key, hubspot_id in conflicts.items():
        holder = owners.get(hubspot_id)
        if holder is None or holder == key:
            adopt.append((key, hubspot_id, props[key]))
        else:
            del outcome.failed[key]
            claims.append(Claim(key, props[key], hubspot_id, holder))
    _adopt(client, object_type, adopt, outcome)


def _adopt(client: HubSpotClient, object_type: str, adopt: Sequence[tuple[str, str, dict[str, str]]], outcome: BatchOutcome) -> None:
    for i in range(0, len(adopt), BATCH):
        result = client.batch_update(object_type, adopt[i : i + BATCH])
        for key, (hubspot_id, _new) in result.ok.items():
            outcome.failed.pop(key, None)
            outcome.ok[key] = (hubspot_id, False)
            outcome.adopted.add(key)
        outcome.failed.update(result.failed)


def settle_claims(
    client: HubSpotClient,
    state: StateStore,
    object_type: str,
    id_property: str,
    claims: Sequence[Claim],
    holder_payloads: Mapping[str, tuple[dict[str, str], str]],
    record: Callable[[BatchOutcome], None],
) -> None:
    """Write the releases, then the claims (module docstring). ``holder_payloads``: this run's payload and
    payload hash of each holder the source still sends; ``record`` stores and logs an outcome."""
    blocked = BatchOutcome()
    live: list[Claim] = []
    for claim in claims:
        if claim.holder in holder_payloads:
            live.append(claim)
        else:
            blocked.failed[claim.key] = claim.conflict(
                f"{claim.holder} keeps it (not synced this run: excluded, rejected or gone from the source)"
            )
    if blocked.failed:
        record(blocked)
    if not live:
        return
    remembered = dict(zip(*_hashes(state, object_type, {c.holder for c in live}), strict=True))
    # A holder whose payload already landed (this run or before) has released the email; the others
    # (a swap or a chain, or a record edited by hand) release it now by clearing it.
    release = {c.holder: c.hubspot_id for c in live if remembered.get(c.holder) != holder_payloads[c.holder][1]}
    if release:
        state.set_hashes(object_type, [(holder, None) for holder in release])
        cleared = [(holder, hubspot_id, {"email": ""}) for holder, hubspot_id in sorted(release.items())]
        for i in range(0, len(cleared), BATCH):
            client.batch_update(object_type, cleared[i : i + BATCH])
        failpoints.reached("identity.released")
    writes = [(c.key, c.props) for c in live] + [(h, holder_payloads[h][0]) for h in sorted(release)]
    by_key = {c.key: c for c in live}
    for i in range(0, len(writes), BATCH):
        chunk = writes[i : i + BATCH]
        outcome = client.batch_upsert(object_type, id_property, chunk)
        _final_conflicts(client, state, object_type, chunk, outcome, by_key)
        record(outcome)


def _final_conflicts(
    client: HubSpotClient,
    state: StateStore,
    object_type: str,
    chunk: Sequence[tuple[str, dict[str, str]]],
    outcome: BatchOutcome,
    claims: Mapping[str, Claim],
) -> None:
    """After the releases: a record nobody owns is adopted; an email still held by another key of ours
    is a conflict whose reason names both keys."""
    again: list[Claim] = []
    sort_conflicts(client, state, object_type, chunk, outcome, again)
    for claim in again:
        original = claims.get(claim.key)
        why = "it still holds it after the release" if original else "a third contact holds it"
        outcome.failed[claim.key] = claim.conflict(why)


def _hashes(state: StateStore, object_type: str, keys: set[str]) -> tuple[list[str], list[str | None]]:
    known = state.id_map(object_type, sorted(keys))
    return known["source_key"].to_list(), known["payload_hash"].to_list()
