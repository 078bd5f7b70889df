"""What ``fp-hubspot sync`` and ``demo run`` need around a run: the environment a fresh shell lacks, the
"last successful sync" marker, the summary line and the dry-run report."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]  # fp_hubspot_assets/cli/sync.py -> the checkout
DEMO_DIR = REPO_ROOT / ".demo"
WRITERS = ("companies", "contacts", "products", "deals", "line_items", "orders", "carts")
RUN_COUNTS = ("created", "updated", "adopted", "archived", "failed", "skipped")
DRY_RUN_KEYS = 5  # keys shown per object type and action in a dry-run report


class SetupMissing(SystemExit):
    """A fresh shell without the environment and without a demo to fall back to: one line, no traceback."""


def demo_env(demo_dir: Path) -> dict[str, str]:
    """The environment of a demo folder (what `make demo` creates): everything it holds stays inside it."""
    return {
        "DAGSTER_HOME": str(demo_dir / "dagster_home"),
        "FP_SAP_URL": f"sqlite:///{demo_dir / 'sap.db'}",
        "FP_STATE_URL": f"sqlite:///{demo_dir / 'state.db'}",
        "FP_PANEL_FILE": str(demo_dir / "panel.yaml"),
    }


def ensure_environment(demo_dir: Path | None = None) -> list[str]:
    """Fill in the Makefile's defaults when nothing is configured; returns the variables it set.

    A shell with ``DAGSTER_HOME`` is a configured environment and is left alone (the state store then lives
    in it, the panel falls back to its defaults). Without it, the demo folder of this checkout is used, as
    ``make demo`` / ``make dev`` do; when there is none, one line says what to set."""
    if os.environ.get("DAGSTER_HOME"):
        return []
    demo_dir = demo_dir or DEMO_DIR
    if not (demo_dir / "dagster_home").is_dir():
        raise SetupMissing(
            "fp-hubspot: DAGSTER_HOME is not set and there is no demo in "
            f"{demo_dir}: run `make demo` (or `make dev`) once, or set DAGSTER_HOME, FP_SAP_URL, FP_STATE_URL "
            "and FP_PANEL_FILE (see README, Configuration)"
        )
    filled = []
    for name, value in demo_env(demo_dir).items():
        if not os.environ.get(name):
            os.environ[name] = value
            filled.append(name)
    return filled


def source_state_tags() -> dict[str, str]:
    """The tags a scheduled run carries: the SAP/FocusPoint markers read now. The run's last step stores
    them as the "last successful sync", so the schedule does not run again for changes this run saw."""
    from fp_hubspot_assets.defs.automation import TRIGGER_TAG
    from fp_hubspot_assets.panel import load_panel
    from fp_hubspot_assets.preflight import sap_reader_from_env
    from fp_hubspot_assets.state.sync_cursor import read_source_state, source_tags

    with sap_reader_from_env() as reader:
        current = read_source_state(reader, load_panel())
    return source_tags(current, extra="cli") | {TRIGGER_TAG: "cli"}


def run_main_job(dry_run: bool = False, full: bool = False) -> tuple[Any, dict[str, int]]:
    """Materialize every asset through the Dagster instance at $DAGSTER_HOME; returns the RunSummary and the
    records known per object type afterwards."""
    from fp_hubspot_assets.instance import dagster_instance
    from fp_hubspot_assets.runner import OBJECT_TYPES, resource_config, run_sync
    from fp_hubspot_assets.state.store import StateStore

    tags = {} if dry_run else source_state_tags()
    with dagster_instance() as instance:  # created once under a lock: two first starts may run together
        # the CLI keeps the state store's documented default (SQLite in $DAGSTER_HOME) when FP_STATE_URL is unset
        config = resource_config(state_url=StateStore.default_url(), dry_run=dry_run, mode="full" if full else "")
        summary = run_sync(instance, config, tags=tags)
    if not summary.success:
        raise SystemExit(
            f"{summary.first_error or 'the sync run failed'}\n(run {summary.run_id}, failed in "
            f"{summary.failed_steps}; open `make dev` → Runs for its logs)"
        )
    with StateStore(StateStore.default_url()) as store:
        ids = store.id_map_all()
    return summary, {t: ids.filter(ids["object_type"] == t).height for t in OBJECT_TYPES if t in _synced()}


def _synced() -> tuple[str, ...]:
    """The object types the panel's ``commerce.objects`` mode syncs (the default leaves out orders and carts)."""
    from fp_hubspot_assets.objects import synced_types
    from fp_hubspot_assets.panel import load_panel

    return synced_types(load_panel().commerce.objects)


def run_counts(metadata: dict[str, dict[str, Any]]) -> dict[str, int]:
    """What one run did, over every object type: records per action, plus HubSpot API requests made."""
    counts = {a: sum(int(metadata.get(f"hubspot_{t}", {}).get(f"count_{a}", 0)) for t in WRITERS) for a in RUN_COUNTS}
    counts["requests"] = sum(int(m.get("api_requests", 0)) for m in metadata.values())
    return counts


def summary_line(metadata: dict[str, dict[str, Any]], totals: dict[str, int], dry_run: bool = False) -> str:
    """``synced: created=… updated=… … requests=… | in HubSpot: contacts=… …`` (README "What the summary
    line means")."""
    did = " ".join(f"{k}={v}" for k, v in run_counts(metadata).items())
    known = " ".join(f"{k}={v}" for k, v in totals.items())
    return f"{'dry run' if dry_run else 'synced'}: {did} | in HubSpot: {known}"


def dry_run_report(metadata: dict[str, dict[str, Any]]) -> list[str]:
    """Per object type: would-create / would-update / would-archive counts, the first keys and what differs."""
    lines = ["dry run — nothing written. Per object type, what a real run would do:"]
    for object_type in (t for t in WRITERS if t in _synced()):
        meta = metadata.get(f"hubspot_{object_type}", {})
        counts = {a: int(meta.get(f"count_would_{a}", 0)) for a in ("create", "update", "archive")}
        lines.append(f"  {object_type}: " + ", ".join(f"would-{a}={n}" for a, n in counts.items()))
        rows = _table_rows(meta.get("records"))
        for action, n in counts.items():
            shown = [r for r in rows if r.get("action") == f"would_{action}"][:DRY_RUN_KEYS]
            for row in shown:
                lines.append(f"    would-{action} {row.get('source_key')}: {row.get('message') or ''}".rstrip(": "))
            if n > len(shown) and shown:
                lines.append(f"    … and {n - len(shown)} more to {action}")
    return lines


def _table_rows(value: Any) -> list[dict[str, Any]]:
    records: Iterable[Any] = getattr(value, "records", None) or []
    return [dict(r.data) for r in records]


def cmd_sync(args: argparse.Namespace) -> int:
    """Run the main job against the configured environment (real HubSpot when a token is set)."""
    from fp_hubspot_assets.preflight import preflight_from_env

    ensure_environment()
    preflight_from_env()  # a broken set-up stops here, before a run starts or anything is written
    summary, totals = run_main_job(dry_run=args.dry_run, full=args.full)
    if args.dry_run:
        print("\n".join(dry_run_report(summary.metadata)))
    print(summary_line(summary.metadata, totals, dry_run=args.dry_run))
    return 0


def add_commands(sub: Any) -> None:
    sync = sub.add_parser("sync", help="run the main job with the current environment")
    sync.add_argument("--dry-run", action="store_true", help="compute and report changes, write nothing")
    sync.add_argument("--full", action="store_true", help="read every source row (and flag records deleted in the "
                      "source), not only what changed since the last successful run")
    sync.set_defaults(func=cmd_sync)
