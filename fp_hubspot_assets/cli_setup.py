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
from dataclasses import dataclass, field
from typing import Any

GREEN, RED, YELLOW, RESET = "\033[32m", "\033[31m", "\033[33m", "\033[0m"


def _color(text: str, color: str) -> str:
    return f"{color}{text}{RESET}" if sys.stdout.isatty() or os.environ.get("FORCE_COLOR") else text


def _panel_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--panel", default="", help="panel YAML (default: $FP_PANEL_FILE, else the defaults)")
    p.add_argument("--state-url", default="", help="state store URL (default: $FP_STATE_URL / $DAGSTER_HOME)")


# ---------------------------------------------------------------- setup
@dataclass
class SetupRun:
    run_id: str
    success: bool
    metadata: dict[str, Any] = field(default_factory=dict)  # the hubspot_first_setup materialization
    checks: dict[str, bool] = field(default_factory=dict)  # asset check name -> passed
    error: str = ""
    refused: bool = False  # the first-setup guard said no: an expected answer, not a crash
    detail: str = ""  # Dagster's error with its stack trace, for a failure that is not a refusal


def run_setup_job(
    instance: Any, run_config: dict[str, Any] | None = None, *, force: bool = False, quiet: bool = False
) -> SetupRun:
    """Execute the ``first_setup`` job in-process; ``force`` sets the asset's run config.

    ``quiet`` silences Dagster's console logger (the CLI prints its own report and red message; the
    event log in the instance is complete either way)."""
    from dagster import AssetCheckEvaluation

    from fp_hubspot_assets.definitions import defs
    from fp_hubspot_assets.defs.first_setup import ASSET_NAME
    from fp_hubspot_assets.defs.jobs import FIRST_SETUP_JOB

    config = dict(run_config or {})
    config["ops"] = {ASSET_NAME: {"config": {"force": force}}}
    if quiet:
        config["loggers"] = {"console": {"config": {"log_level": "CRITICAL"}}}
    result = defs.resolve_job_def(FIRST_SETUP_JOB).execute_in_process(
        instance=instance, run_config=config, raise_on_error=False
    )
    run = SetupRun(result.run_id, result.success)
    for event in result.all_events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            if mat.asset_key.to_user_string() == ASSET_NAME:
                run.metadata = {k: v.value for k, v in mat.metadata.items()}
        evaluation = event.event_specific_data
        if isinstance(evaluation, AssetCheckEvaluation):
            run.checks[evaluation.check_name] = bool(evaluation.passed)
        if event.is_step_failure and not run.error:
            data = event.step_failure_data
            user = data.user_failure_data
            run.error = (user.description if user and user.description else None) or (
                data.error.message.strip() if data.error else f"step {event.step_key} failed"
            )
            status = user.metadata.get("status") if user else None
            run.refused = getattr(status, "value", None) == "refused"
            if not run.refused and data.error:
                run.detail = data.error.to_string()
    return run


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
        print(_color("  forced: the first-setup guard was overridden (manual attempt)", YELLOW))
    ambiguous = metadata.get("ambiguous")
    records = getattr(ambiguous, "records", None) or []
    for record in records[:20]:
        row = record.data
        print(_color(f"  ambiguous {row['object_type']} {row['source_keys']}: {row['reason']} "
                     f"({row['match_key']}; HubSpot ids {row['hubspot_ids']})", YELLOW))
    if len(records) > 20:
        print(f"  … {len(records) - 20} more ambiguous cases in the asset metadata / integration log")


def cmd_setup(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from fp_hubspot_assets.runner import resource_config
    from fp_hubspot_assets.state.store import StateStore

    state_url = args.state_url or StateStore.default_url()
    config = resource_config(panel=args.panel, sap_url=args.sap_url, state_url=state_url, dry_run=args.dry_run)
    from fp_hubspot_assets.instance import dagster_instance

    opened = dagster_instance() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    with opened as instance:
        run = run_setup_job(instance, config, force=args.force, quiet=True)
    if not run.success:
        if run.detail:  # an unexpected failure: keep Dagster's stack trace for whoever debugs it
            print(run.detail, file=sys.stderr)
        print(_color(run.error or f"first set-up run {run.run_id} failed", RED), file=sys.stderr)
        return 1
    _print_report(run.metadata)
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
        print(_color(str(exc), RED), file=sys.stderr)
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
        print(_color(f"Authorization failed: {exc}", RED), file=sys.stderr)
        return 1
    print(_color(f"Connected to HubSpot: tokens stored in the state store (encrypted); access token valid "
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
