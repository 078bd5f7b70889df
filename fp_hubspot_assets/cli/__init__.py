"""``fp-hubspot``, the product's command: panel checks, syncing, first set-up and OAuth, the integration log
and tracing, and the preflight against a HubSpot account. One module per command group; the demo store and
the local sandbox have their own command, ``fp-demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fp_hubspot_assets.cli import doctor, panel, setup, sync, trace


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fp-hubspot",
        description="FocusPoint → HubSpot: panel checks, syncing, set-up, tracing and the HubSpot preflight. "
        "Without DAGSTER_HOME set, commands use this checkout's .demo/ folder (as `make demo` does).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (panel, sync, setup, trace, doctor):
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from fp_hubspot_assets.preflight import PreflightError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PreflightError as exc:  # one line, what/where/how to fix: no traceback for a set-up mistake
        print(f"fp-hubspot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
