"""First set-up for a store that already uses HubSpot: Pull Contacts, Pull Companies, Ignore existing deals.

- **Pull Contacts / Pull Companies** read every existing HubSpot contact / company through the list API
  (all pages; search is capped at 10,000 results and lags behind writes), match each to one of our records,
  stamp our unique id (``fp_customer_id`` / ``fp_company_id``) on the HubSpot record (batch update, 100 per
  request) and record the pair in the ID map with no payload hash. The first sync then *updates* those
  records (upsert by our id) instead of creating duplicates.
- **Matching rules** (docs/first-setup.md):
  contacts — our normalized email (lower-case, whitespace removed; the mapping's rule) equals the HubSpot
  contact's email normalized the same way;
  companies — the domain of the partner's email (free-mail providers excluded, as the mapping does) equals,
  first, the HubSpot company's ``domain`` property, then, for companies not matched that way, the host of its
  ``website`` (both lower-cased, scheme, ``www.``, port and path removed).
  A key that two or more HubSpot records share (duplicates in HubSpot), or that two of ours share, is
  **ambiguous**: nothing is stamped for it, it is reported (integration log ``skipped`` / AMBIGUOUS_MATCH and
  the set-up's asset check), never guessed. A HubSpot record that already carries one of our ids is ours
  already (recorded, not re-stamped); one carrying an id we do not know is never stamped over.
- **Ignore existing deals** records every order that exists now (by its deal key — a web order's deal key
  is its cart's) as a baseline; the deal and line-item writers never send baselined deals. Orders created
  afterwards are synced. A baselined order that changes later stays unsent (see docs/first-setup.md).
- The **guard**: these options run only while nothing has been synced (``StateStore.anything_synced``),
  unless forced (the panel's "manual attempt"), which is logged. Nothing here writes to SAP.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.client import HubSpotClient
from fp_hubspot_assets.mapping import ID_PROPERTY, Mapped
from fp_hubspot_assets.mapping.deals import deal_sources
from fp_hubspot_assets.panel import FirstSetup
from fp_hubspot_assets.state.store import LogRow, StateStore

log = logging.getLogger(__name__)

STATE_KEY = "first_setup"  # setup_state: the report of the last first set-up
AMBIGUOUS = "AMBIGUOUS_MATCH"
BATCH = ep.OBJECTS_BATCH_UPDATE.batch_size
PULL_TYPES = ("contacts", "companies")


class FirstSetupRefused(RuntimeError):
    """First-setup options asked for after data was synced, without ``first_setup.force``."""


# ---------------------------------------------------------------------------------- normalization
def normalize_email(value: str | None) -> str | None:
    """The mapping's rule (mapping.common.normalize_email): lower-case, whitespace and NUL removed."""
    cleaned = re.sub(r"[\s\x00]+", "", value or "").lower()
    return cleaned or None


def normalize_domain(value: str | None) -> str | None:
    """``https://www.Example.com:443/about`` → ``example.com``; None when nothing usable is left."""
    text = (value or "").strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = re.split(r"[/?#]", text, maxsplit=1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].strip(".")
    text = text.removeprefix("www.")
    return text if "." in text else None


# ---------------------------------------------------------------------------------- matching (pure)
@dataclass(frozen=True)
class HubSpotRecord:
    hubspot_id: str
    keys: tuple[str | None, ...]  # match keys, one per tier (None: no value for that tier)
    owner: str | None  # our id property's current value


@dataclass
class Ambiguity:
    match_key: str
    source_keys: list[str]
    hubspot_ids: list[str]
    reason: str


@dataclass
class MatchResult:
    matched: dict[str, str] = field(default_factory=dict)  # our key -> HubSpot id (needs stamping)
    already_ours: dict[str, str] = field(default_factory=dict)  # our key -> HubSpot id (already stamped)
    ambiguous: list[Ambiguity] = field(default_factory=list)
    match_keys: dict[str, str] = field(default_factory=dict)  # our key -> the value it matched on


def match_records(
    ours: dict[str, tuple[str | None, ...]], theirs: Sequence[HubSpotRecord], tier_names: Sequence[str]
) -> MatchResult:
    """Pair our records (key -> match keys per tier) with HubSpot records, tier by tier.

    In each tier, a match key held by exactly one of our unresolved records and exactly one unclaimed HubSpot
    record pairs them. A key held by several on either side is ambiguous: reported, and those records of ours
    are not tried in later tiers (a later, weaker tier must not silently pick one of the duplicates)."""
    result = MatchResult()
    by_owner: dict[str, list[HubSpotRecord]] = defaultdict(list)
    for record in theirs:
        if record.owner:
            by_owner[record.owner].append(record)
    claimed: set[str] = set()
    for key in ours:
        owners = by_owner.get(key, [])
        if len(owners) == 1:
            result.already_ours[key] = owners[0].hubspot_id
            claimed.add(owners[0].hubspot_id)
        elif owners:
            ids = sorted(r.hubspot_id for r in owners)
            result.ambiguous.append(Ambiguity(key, [key], ids, f"{len(ids)} HubSpot records already carry this id"))
    resolved = set(result.already_ours) | {k for a in result.ambiguous for k in a.source_keys}
    for tier, name in enumerate(tier_names):
        our_by_value: dict[str, list[str]] = defaultdict(list)
        for key, values in ours.items():
            if key not in resolved and tier < len(values) and (value := values[tier]):
                our_by_value[value].append(key)
        their_by_value: dict[str, list[HubSpotRecord]] = defaultdict(list)
        for record in theirs:
            if record.hubspot_id not in claimed and tier < len(record.keys) and (value := record.keys[tier]):
                their_by_value[value].append(record)
        for value, keys in sorted(our_by_value.items()):
            candidates = their_by_value.get(value)
            if not candidates:
                continue
            ids = sorted(r.hubspot_id for r in candidates)
            foreign = [r for r in candidates if r.owner]
            if len(keys) == 1 and len(candidates) == 1 and not foreign:
                result.matched[keys[0]] = candidates[0].hubspot_id
                result.match_keys[keys[0]] = value
                claimed.add(candidates[0].hubspot_id)
            else:
                if foreign and len(candidates) == 1 and len(keys) == 1:
                    reason = f"the HubSpot record with this {name} already carries another id ({foreign[0].owner})"
                elif len(keys) > 1:
                    reason = f"{len(keys)} of our records share this {name}"
                else:
                    reason = f"{len(candidates)} HubSpot records share this {name} (duplicates in HubSpot)"
                result.ambiguous.append(Ambiguity(value, sorted(keys), ids, reason))
            resolved.update(keys)
    return result


def _prop(record: Any, name: str) -> str | None:
    props = getattr(record, "properties", None) or {}
    value = props.get(name)
    return None if value in (None, "") else str(value)


def contact_match_keys(mapped: Mapped) -> dict[str, tuple[str | None, ...]]:
    return {k: (normalize_email(e),) for k, e in mapped.records.select("source_key", "email").iter_rows()}


def company_match_keys(mapped: Mapped) -> dict[str, tuple[str | None, ...]]:
    # The payload's domain is the partner email's domain (free-mail excluded); both tiers compare it.
    return {
        k: (normalize_domain(d), normalize_domain(d)) for k, d in mapped.records.select("source_key", "domain").iter_rows()
    }


@dataclass(frozen=True)
class PullSpec:
    """How one object type is read and matched."""

    object_type: str
    properties: tuple[str, ...]
    tier_names: tuple[str, ...]
    ours: Callable[[Mapped], dict[str, tuple[str | None, ...]]]
    theirs: Callable[[Any], tuple[str | None, ...]]


PULL_SPECS: dict[str, PullSpec] = {
    "contacts": PullSpec(
        "contacts", ("email",), ("email",), contact_match_keys, lambda r: (normalize_email(_prop(r, "email")),)
    ),
    "companies": PullSpec(
        "companies",
        ("domain", "website", "name"),
        ("domain", "website"),
        company_match_keys,
        lambda r: (normalize_domain(_prop(r, "domain")), normalize_domain(_prop(r, "website"))),
    ),
}


# ---------------------------------------------------------------------------------- reports
@dataclass
class PullReport:
    object_type: str
    hubspot_records: int = 0
    matched: int = 0  # ours paired with a HubSpot record (including already stamped)
    already_stamped: int = 0
    stamped: int = 0
    ambiguous: list[Ambiguity] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # our key -> reason the stamp was refused


@dataclass
class FirstSetupReport:
    options: dict[str, bool]
    forced: bool = False
    dry_run: bool = False
    pulls: dict[str, PullReport] = field(default_factory=dict)
    baselined: int = 0  # newly recorded this time
    baseline_total: int = 0
    finished_at: str = ""

    def counts(self) -> dict[str, int]:
        """The set-up's numbers: matched, stamped, ambiguous, baselined (per type where it applies)."""
        out: dict[str, int] = {}
        for t, p in self.pulls.items():
            out |= {
                f"{t}_in_hubspot": p.hubspot_records,
                f"{t}_matched": p.matched,
                f"{t}_stamped": p.stamped,
                f"{t}_ambiguous": sum(len(a.source_keys) for a in p.ambiguous),
                f"{t}_failed": len(p.failed),
            }
        totals = {
            "matched": sum(p.matched for p in self.pulls.values()),
            "stamped": sum(p.stamped for p in self.pulls.values()),
            "ambiguous": sum(len(a.source_keys) for p in self.pulls.values() for a in p.ambiguous),
            "failed": sum(len(p.failed) for p in self.pulls.values()),
            "baselined": self.baselined,
        }
        return totals | out

    def ambiguous_frame(self) -> pl.DataFrame:
        rows = [
            {"object_type": t, "match_key": a.match_key, "source_keys": ", ".join(a.source_keys),
             "hubspot_ids": ", ".join(a.hubspot_ids), "reason": a.reason}
            for t, p in self.pulls.items()
            for a in p.ambiguous
        ]
        schema = dict.fromkeys(("object_type", "match_key", "source_keys", "hubspot_ids", "reason"), pl.String)
        return pl.DataFrame(rows, schema=schema)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary_line(self) -> str:
        c = self.counts()
        return (
            f"first set-up{' (dry run)' if self.dry_run else ''}: matched={c['matched']} stamped={c['stamped']} "
            f"ambiguous={c['ambiguous']} failed={c['failed']} baselined={c['baselined']}"
        )


# ---------------------------------------------------------------------------------- the steps
def wanted(options: FirstSetup) -> bool:
    return options.pull_contacts or options.pull_companies or options.ignore_existing_deals


def why_not_run(store: StateStore, options: FirstSetup, *, explicit: bool) -> tuple[str, str] | None:
    """(status, reason) when the first set-up does nothing in this run, else None.

    ``explicit``: the ``first_setup`` job (`fp-hubspot setup`), which always runs the enabled options behind
    ``check_guard``. Inside a sync job it runs once, before anything was synced; options set after data was
    synced are refused with a reason (a warning, never a blocked sync)."""
    if not wanted(options):
        return "nothing to do", "no first-setup option is enabled in the panel"
    if explicit:
        return None
    if last_report(store) is not None:
        return "done earlier", "first set-up already ran; `fp-hubspot setup --force` repeats it"
    if store.anything_synced():
        return "refused", ("first-setup options are set but data was already synced; they are not applied. "
                           "Run `fp-hubspot setup --force` to apply them on purpose.")
    return None


def check_guard(store: StateStore, force: bool) -> bool:
    """True when the guard was passed by force. Raises FirstSetupRefused after a sync without force."""
    if not store.anything_synced():
        return False
    if not force:
        raise FirstSetupRefused(
            "first set-up refused: data has already been synced to HubSpot, and Pull Contacts / Pull Companies / "
            "Ignore existing deals are first-set-up options only. To run them anyway on purpose (the "
            "\"manual attempt\"), set first_setup.force: true in the panel or pass --force; it is logged."
        )
    log.warning("first set-up FORCED after data was synced (first_setup.force) — the manual attempt")
    return True


def pull(
    client: HubSpotClient,
    store: StateStore,
    spec: PullSpec,
    ours: Mapped,
    run_id: str,
    *,
    dry_run: bool = False,
) -> PullReport:
    """Read every HubSpot record of the type, match, stamp our id (100 per batch) and record the ID map."""
    id_property = ID_PROPERTY[spec.object_type]
    theirs = [
        HubSpotRecord(str(r.id), spec.theirs(r), _prop(r, id_property))
        for r in client.list_all(spec.object_type, [*spec.properties, id_property])
    ]
    result = match_records(spec.ours(ours), theirs, spec.tier_names)
    report = PullReport(
        spec.object_type,
        hubspot_records=len(theirs),
        matched=len(result.matched) + len(result.already_ours),
        already_stamped=len(result.already_ours),
        ambiguous=result.ambiguous,
    )
    rows: list[LogRow] = [
        LogRow(spec.object_type, key, "skipped", None, AMBIGUOUS,
               f"first set-up: {a.reason}: {a.match_key} (HubSpot ids {', '.join(a.hubspot_ids)}); not stamped")
        for a in result.ambiguous
        for key in a.source_keys
    ]
    if dry_run:
        report.stamped = 0
        return report
    stamped: dict[str, str] = {}
    pending = sorted(result.matched.items())
    for start in range(0, len(pending), BATCH):
        chunk = pending[start : start + BATCH]
        outcome = client.batch_update(spec.object_type, [(k, h, {id_property: k}) for k, h in chunk])
        for key, (hubspot_id, _created) in outcome.ok.items():
            stamped[key] = hubspot_id
        for key, (category, message) in outcome.failed.items():
            report.failed[key] = f"{category}: {message}"
            rows.append(LogRow(spec.object_type, key, "failed", result.matched[key], category,
                               f"first set-up: stamping {id_property} failed: {message}"))
        # Recorded per batch, so a crash mid-way keeps what HubSpot already accepted.
        store.record_synced(spec.object_type, [(k, h, None) for k, (h, _new) in outcome.ok.items()], run_id)
    report.stamped = len(stamped)
    known = store.hubspot_ids(spec.object_type, result.already_ours)
    unmapped = [(k, h, None) for k, h in result.already_ours.items() if known.get(k) != h]
    store.record_synced(spec.object_type, unmapped, run_id)  # a synced record keeps its payload hash
    rows += [
        LogRow(spec.object_type, k, "adopted", h, None, f"first set-up: matched by {result.match_keys[k]}")
        for k, h in sorted(stamped.items())
    ]
    rows += [
        LogRow(spec.object_type, k, "adopted", h, None, f"first set-up: already carries {id_property}")
        for k, h in sorted(result.already_ours.items())
    ]
    store.log(run_id, rows)
    return report


def existing_deal_keys(orders: pl.DataFrame, carts: pl.DataFrame) -> list[str]:
    """Deal keys of every order that exists now (a web order's deal key is its cart's, as the mapping says)."""
    deals, _issues = deal_sources(orders, carts)
    return sorted(deals.filter(pl.col("origin") == "order")["deal_key"].to_list())


def existing_order_keys(orders: pl.DataFrame, carts: pl.DataFrame) -> list[str]:
    """Order keys (``O<entry>``) of every order that exists now: HubSpot's native orders (commerce.objects)."""
    deals, _issues = deal_sources(orders, carts)
    return sorted(deals.filter(pl.col("origin") == "order")["order_key"].to_list())


def record_baseline(store: StateStore, keys: Iterable[str], *, dry_run: bool = False, object_type: str = "deals") -> int:
    """Baseline the deals (or orders) that never reached HubSpot (a forced re-run must not freeze synced ones)."""
    keys = sorted(set(keys))
    already_sent = store.hubspot_ids(object_type, keys)
    fresh = [k for k in keys if k not in already_sent]
    if dry_run:
        return len(set(fresh) - store.baseline(object_type))
    return store.add_baseline(object_type, fresh)


def run_first_setup(
    client: HubSpotClient,
    store: StateStore,
    options: FirstSetup,
    *,
    contacts: Mapped,
    companies: Mapped,
    orders: pl.DataFrame,
    carts: pl.DataFrame,
    run_id: str,
    force: bool = False,
    dry_run: bool = False,
) -> FirstSetupReport:
    """Run the enabled first-set-up options (guard first) and keep the report in the state store."""
    forced = check_guard(store, force or options.force)
    report = FirstSetupReport(
        options={"pull_contacts": options.pull_contacts, "pull_companies": options.pull_companies,
                 "ignore_existing_deals": options.ignore_existing_deals},
        forced=forced,
        dry_run=dry_run,
    )
    # Companies first: contacts' company associations then find their company already mapped.
    if options.pull_companies:
        report.pulls["companies"] = pull(client, store, PULL_SPECS["companies"], companies, run_id, dry_run=dry_run)
    if options.pull_contacts:
        report.pulls["contacts"] = pull(client, store, PULL_SPECS["contacts"], contacts, run_id, dry_run=dry_run)
    if options.ignore_existing_deals:
        report.baselined = record_baseline(store, existing_deal_keys(orders, carts), dry_run=dry_run)
        # the same orders as HubSpot's native orders, whatever commerce.objects says now: a later switch to
        # orders_and_carts or both must not send them either
        record_baseline(store, existing_order_keys(orders, carts), dry_run=dry_run, object_type="orders")
    report.baseline_total = len(store.baseline("deals"))
    report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    if not dry_run:
        store.set_setup(STATE_KEY, report.to_json() | {"run_id": run_id})
    return report


def last_report(store: StateStore) -> dict[str, Any] | None:
    """The stored report of the last first set-up, or None if it never ran."""
    return store.get_setup(STATE_KEY)
