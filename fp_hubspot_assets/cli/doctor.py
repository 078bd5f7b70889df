"""``fp-hubspot doctor``: check the HubSpot connection before the first sync (read-only)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fp_hubspot_assets.cli.output import GREEN, RED, color


def cmd_doctor(args: argparse.Namespace) -> int:
    from fp_hubspot_assets.defs.resources import HubSpotResource
    from fp_hubspot_assets.hubspot.doctor import as_json, run_checks, table
    from fp_hubspot_assets.hubspot.oauth import OAuthError
    from fp_hubspot_assets.panel import PanelError, load_panel
    from fp_hubspot_assets.state.store import StateStore

    try:
        settings = load_panel(args.panel or None)
    except PanelError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    store = StateStore(args.state_url or StateStore.default_url()) if settings.integration.mode == "public_app" else None
    try:
        client = HubSpotResource().client(settings, store)
        checks = run_checks(settings, client)
    except OAuthError as exc:  # public app without (valid) stored tokens
        from fp_hubspot_assets.hubspot.doctor import Check

        checks = [Check("token and account", False, str(exc))]
    finally:
        if store is not None:
            store.dispose()
    if args.json:
        print(json.dumps(as_json(checks), indent=2))
    else:
        print(table(checks, lambda text, ok: color(text, GREEN if ok else RED)))
    return 0 if all(c.ok for c in checks) else 1


def add_commands(subparsers: Any) -> None:
    doctor = subparsers.add_parser(
        "doctor", help="preflight against the HubSpot account: token, scopes, limits, properties, pipeline (read-only)"
    )
    doctor.add_argument("--panel", default="", help="panel YAML (default: $FP_PANEL_FILE, else the defaults)")
    doctor.add_argument("--state-url", default="", help="state store URL, for public-app tokens (default: $FP_STATE_URL)")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON (for scripts)")
    doctor.set_defaults(func=cmd_doctor)
