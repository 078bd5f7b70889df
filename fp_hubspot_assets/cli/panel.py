"""``fp-hubspot panel check|schema``: validate a panel file, print the panel's JSON schema."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fp_hubspot_assets.cli.output import GREEN, RED, color


def cmd_panel_check(args: argparse.Namespace) -> int:
    from fp_hubspot_assets.panel import PanelError, load_panel

    try:
        settings = load_panel(args.file)
    except PanelError as exc:
        print(color(str(exc), RED), file=sys.stderr)
        return 1
    print(color(f"{args.file}: valid (tier {settings.tier.value}, mode {settings.integration.mode})", GREEN))
    return 0


def cmd_panel_schema(_args: argparse.Namespace) -> int:
    from fp_hubspot_assets.panel import PanelSettings

    print(json.dumps(PanelSettings.model_json_schema(), indent=2))
    return 0


def add_commands(sub: Any) -> None:
    panel = sub.add_parser("panel", help="validate or describe panel settings").add_subparsers(dest="panel_cmd", required=True)
    check = panel.add_parser("check", help="validate a panel YAML file")
    check.add_argument("file", help="the panel YAML file to check")
    check.set_defaults(func=cmd_panel_check)
    panel.add_parser("schema", help="print the panel's JSON schema").set_defaults(func=cmd_panel_schema)
