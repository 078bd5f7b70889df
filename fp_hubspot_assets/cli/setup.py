"""``fp-hubspot setup`` (first set-up) and ``fp-hubspot authorize`` (the OAuth "Authorize" flow).

``setup`` runs the Dagster ``first_setup`` job in-process (the same code the UI runs), prints the report
(matched, stamped, ambiguous, baselined) and fails with the guard's message once data was synced, unless
``--force``. ``authorize`` connects a public app: green line on success, red with HubSpot's message on error.
"""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from typing import Any

from fp_hubspot_assets.cli.output import GREEN, RED, YELLOW, color


def _panel_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--panel", default="", help="panel YAML (default: $FP_PANEL_FILE, else the defaults)")
    p.add_argument("--state-url", default="", help="state store URL (default: $FP_STATE_URL / $DAGSTER_HOME)")


# ---------------------------------------------------------------- setup
def _print_report(metadata: dict[str, Any]) -> None:
    if metadata.get("status") not in ("done", "dry run"):
        print(f"first set-up: {metadata.get('status')} — {metadata.get('reason', '')}")
        return
    print(metadata.get("summary", ""))
    for object_type in ("companies", "contacts"):
        if f"count_{object_type}_in_hubspot" in metadata:
            print(
                f"  {object_type}: in HubSpot={metadata[f'count_{object_type}_in_hubspot']} "
                f"matched={metadata[f'count_{object_type}_matched']} stamped={metadata[f'count_{object_type}_stamped']} "
                f"ambiguous={metadata[f'count_{object_type}_ambiguous']} failed={metadata[f'count_{object_type}_failed']}"
            )
    print(f"  deals: baselined={metadata.get('count_baselined', 0)} (baseline total {metadata.get('baseline_total', 0)})")
    if metadata.get("forced"):
        print(color("  forced: the first-setup guard was overridden (manual attempt)", YELLOW))
    ambiguous = metadata.get("ambiguous")
    records = getattr(ambiguous, "records", None) or []
    for record in records[:20]:
        row = record.data
        print(color(f"  ambiguous {row['object_type']} {row['source_keys']}: {row['reason']} "
                     f"({row['match_key']}; HubSpot ids {row['hubspot_ids']})", YELLOW))
    if len(records) > 20:
        print(f"  … {len(records) - 20} more ambiguous cases in the asset metadata / integration log")


def cmd_setup(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from fp_hubspot_assets.defs.first_setup import ASSET_NAME
    from fp_hubspot_assets.instance import dagster_instance
    from fp_hubspot_assets.runner import resource_config, run_first_setup
    from fp_hubspot_assets.state.store import StateStore

    state_url = args.state_url or StateStore.default_url()
    config = resource_config(panel=args.panel, sap_url=args.sap_url, state_url=state_url, dry_run=args.dry_run)

    opened = dagster_instance() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    with opened as instance:
        run = run_first_setup(instance, config, force=args.force, quiet=True)
    if not run.success:
        if run.detail:  # an unexpected failure: keep Dagster's stack trace for whoever debugs it
            print(run.detail, file=sys.stderr)
        print(color(run.error or f"first set-up run {run.run_id} failed", RED), file=sys.stderr)
        return 1
    _print_report(run.metadata.get(ASSET_NAME, {}))
    return 0


# ---------------------------------------------------------------- authorize
def _show_url(url: str, open_browser: bool) -> None:
    print("Open this URL to connect HubSpot (waiting for the redirect back):", flush=True)
    print(url, flush=True)
    if open_browser:
        try:
            webbrowser.get()  # raises when no browser is available (a server, CI)
        except webbrowser.Error:
            return
        webbrowser.open(url)


def cmd_authorize(args: argparse.Namespace) -> int:
    from fp_hubspot_assets.hubspot.oauth import OAuthError, authorize, optional_scopes, required_scopes
    from fp_hubspot_assets.panel import PanelError, load_panel
    from fp_hubspot_assets.state.crypto import StateKeyError
    from fp_hubspot_assets.state.store import StateStore

    try:
        settings = load_panel(args.panel or None)
    except PanelError as exc:
        print(color(str(exc), RED), file=sys.stderr)
        return 1
    if args.scopes:
        print("\n".join(required_scopes(settings)))
        if optional := optional_scopes(settings):
            print("# optional (asked for, not required):\n" + "\n".join(optional))
        return 0
    try:
        with StateStore(args.state_url or StateStore.default_url()) as store:
            grant = authorize(settings, store, lambda url: _show_url(url, not args.no_browser), timeout=args.timeout)
    except (OAuthError, StateKeyError) as exc:
        print(color(f"Authorization failed: {exc}", RED), file=sys.stderr)
        return 1
    print(color(f"Connected to HubSpot: tokens stored in the state store (encrypted); access token valid "
                 f"until {grant.expires_at:%Y-%m-%d %H:%M:%S} UTC, refreshed automatically.", GREEN))
    return 0


def add_commands(subparsers: Any) -> None:
    """Register ``setup`` and ``authorize`` on the ``fp-hubspot`` parser."""
    setup = subparsers.add_parser(
        "setup", help="first set-up: Pull Contacts / Pull Companies / Ignore existing deals (panel first_setup)"
    )
    _panel_args(setup)
    setup.add_argument("--sap-url", default="", help="SAP database URL (default: $FP_SAP_URL)")
    setup.add_argument("--force", action="store_true",
                       help="run even though data was already synced (the manual attempt; logged)")
    setup.add_argument("--dry-run", action="store_true", help="read HubSpot and report matches; write nothing")
    setup.set_defaults(func=cmd_setup)

    auth = subparsers.add_parser("authorize", help="connect a public app to HubSpot (OAuth) and store its tokens")
    _panel_args(auth)
    auth.add_argument("--scopes", action="store_true", help="print the minimal scopes for the panel and exit")
    auth.add_argument("--no-browser", action="store_true", help="only print the URL, do not open a browser")
    auth.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the redirect back")
    auth.set_defaults(func=cmd_authorize)
