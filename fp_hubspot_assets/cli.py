"""The ``fp-hubspot`` command: panel checks, the demo database, the sandbox, the demo run and the UI."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from fp_hubspot_assets.cli_run import dry_run_report, ensure_environment, run_main_job, summary_line
from fp_hubspot_assets.objects import COMMERCE_MODES

REPO_ROOT = Path(__file__).resolve().parent.parent
GREEN, RED, RESET = "\033[32m", "\033[31m", "\033[0m"


def _color(text: str, color: str) -> str:
    return f"{color}{text}{RESET}" if sys.stdout.isatty() else text


# ---------------------------------------------------------------- panel
def cmd_panel_check(args: argparse.Namespace) -> int:
    from fp_hubspot_assets.panel import PanelError, load_panel

    try:
        settings = load_panel(args.file)
    except PanelError as exc:
        print(_color(str(exc), RED), file=sys.stderr)
        return 1
    print(_color(f"{args.file}: valid (tier {settings.tier.value}, mode {settings.integration.mode})", GREEN))
    return 0


def cmd_panel_schema(_args: argparse.Namespace) -> int:
    from fp_hubspot_assets.panel import PanelSettings

    print(json.dumps(PanelSettings.model_json_schema(), indent=2))
    return 0


# ---------------------------------------------------------------- demo database
def cmd_demo_generate(args: argparse.Namespace) -> int:
    from fp_hubspot_assets.sap.demo import generate

    counts = generate(args.url, args.customers, seed=args.seed)
    print(f"generated {args.url}: " + ", ".join(f"{t}={n}" for t, n in counts.items()))
    return 0


def cmd_demo_simulate(args: argparse.Namespace) -> int:
    """One burst of store activity, or with ``--every`` a live store: a burst every N seconds, stamped with
    the real current time so new carts are fresh (the sensors and the incremental schedule pick them up)."""
    import time
    from datetime import UTC, datetime

    from fp_hubspot_assets.sap.demo import simulate

    rounds = args.rounds if args.rounds is not None else (0 if args.every else 1)  # 0: until Ctrl-C
    done = 0
    try:
        while True:
            counts = simulate(args.url, seed=args.seed + done)  # a new seed per round: other customers, items
            done += 1
            stamp = datetime.now(UTC).strftime("%H:%M:%SZ")
            print(f"round {done} {stamp} simulated: " + ", ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
            if rounds and done >= rounds:
                return 0
            time.sleep(args.every)
    except KeyboardInterrupt:
        return 0


# ---------------------------------------------------------------- demo run / dev
def demo_env(demo_dir: Path) -> dict[str, str]:
    """Environment for a demo in ``demo_dir``: everything it creates stays inside that folder."""
    return {
        "DAGSTER_HOME": str(demo_dir / "dagster_home"),
        "FP_SAP_URL": f"sqlite:///{demo_dir / 'sap.db'}",
        "FP_STATE_URL": f"sqlite:///{demo_dir / 'state.db'}",
        "FP_PANEL_FILE": str(demo_dir / "panel.yaml"),
    }


def prepare_demo(demo_dir: Path, customers: int, seed: int, sandbox_url: str, commerce: str = "deals") -> dict[str, str]:
    """Create the demo folder: Dagster home (with our dagster.yaml), SAP database, panel file (its
    ``commerce.objects`` set to ``commerce``)."""
    from fp_hubspot_assets.sap.demo import generate

    env = demo_env(demo_dir)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    sap_db = demo_dir / "sap.db"
    if not sap_db.exists():
        counts = generate(env["FP_SAP_URL"], customers, seed=seed)
        print(f"demo SAP database {sap_db}: {counts.get('OCRD', 0)} partners, {counts.get('FP_CUSTOMER', 0)} web customers")
    panel = Path(env["FP_PANEL_FILE"])
    example = (REPO_ROOT / "panel.example.yaml").read_text(encoding="utf-8")
    panel.write_text(
        "# written by `fp-hubspot demo`: the example panel pointed at the local sandbox\n"
        + example.replace("  base_url: null", f"  base_url: {sandbox_url}").replace(
            "  objects: deals ", f"  objects: {commerce} "
        ),
        encoding="utf-8",
    )
    os.environ.update(env)
    return env


def cmd_demo_run(args: argparse.Namespace) -> int:
    from fp_hubspot_assets.sandbox.testing import running_sandbox

    demo_dir = Path(args.dir).resolve()
    demo_dir.mkdir(parents=True, exist_ok=True)
    with running_sandbox(demo_dir / "hubspot.db", port=args.sandbox_port) as sandbox:
        prepare_demo(demo_dir, args.customers, args.seed, sandbox.base_url, args.commerce)
        summary, totals = run_main_job()
    print(summary_line(summary.metadata, totals))
    return 0


def cmd_demo_prepare(args: argparse.Namespace) -> int:
    demo_dir = Path(args.dir).resolve()
    prepare_demo(demo_dir, args.customers, args.seed, f"http://127.0.0.1:{args.sandbox_port}", args.commerce)
    print(f"demo ready in {demo_dir}")
    return 0


# `dagster dev` says to use `dg dev`, which needs the dagster-dg-cli package and a dg project layout this
# repository does not have; the warning asks nothing of a demo user.
DEV_WARNINGS = "ignore:Function `dev_command` is superseded"


def cmd_dev(args: argparse.Namespace) -> int:
    """The sandbox plus `dagster dev` on the demo data (Ctrl-C stops both)."""
    from fp_hubspot_assets.sandbox.testing import running_sandbox

    demo_dir = Path(args.dir).resolve()
    env = os.environ | demo_env(demo_dir)
    bin_dir = Path(sys.executable).parent
    with running_sandbox(demo_dir / "hubspot.db", port=args.sandbox_port):
        # the tracing page beside the UI (each HubSpot asset's metadata links to it)
        page = subprocess.Popen([str(bin_dir / "fp-hubspot"), "tracing-page", "--port", str(args.tracing_port)], env=env)
        try:
            return subprocess.call(
                [str(bin_dir / "dagster"), "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-p", str(args.ui_port)],
                env=env | {"FP_TRACING_URL": f"http://127.0.0.1:{args.tracing_port}", "PYTHONWARNINGS": DEV_WARNINGS},
                cwd=demo_dir,  # not the checkout: its dagster.yaml there makes Dagster warn it is not used
            )
        except KeyboardInterrupt:
            return 0
        finally:
            page.terminate()
            page.wait(10)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from fp_hubspot_assets.sandbox.server import run_from_args

    run_from_args(args)
    return 0


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


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fp-hubspot",
        description="FocusPoint → HubSpot: panel checks, the demo, the sandbox, syncing and tracing. "
        "Without DAGSTER_HOME set, commands use this checkout's .demo/ folder (as `make demo` does).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    panel = sub.add_parser("panel", help="validate or describe panel settings").add_subparsers(dest="panel_cmd", required=True)
    check = panel.add_parser("check", help="validate a panel YAML file")
    check.add_argument("file", help="the panel YAML file to check")
    check.set_defaults(func=cmd_panel_check)
    panel.add_parser("schema", help="print the panel's JSON schema").set_defaults(func=cmd_panel_schema)

    demo = sub.add_parser("demo", help="the demo SAP database and the demo run").add_subparsers(dest="demo_cmd", required=True)
    gen = demo.add_parser("generate", help="write a demo SAP Business One + FocusPoint database")
    gen.add_argument("--customers", type=int, default=2000, help="web customers to generate (default: 2000)")
    gen.add_argument("--seed", type=int, default=42, help="random seed: the same seed gives the same data")
    gen.add_argument("--url", default="sqlite:///.demo/sap.db", help="SQLAlchemy URL of the database to write")
    gen.set_defaults(func=cmd_demo_generate)
    sim = demo.add_parser("simulate", help="add new carts, orders and changes to a demo database")
    sim.add_argument("--url", default="sqlite:///.demo/sap.db", help="SQLAlchemy URL of the demo SAP database")
    sim.add_argument("--seed", type=int, default=1, help="random seed of the first round (next rounds: +1 each)")
    sim.add_argument("--every", type=float, default=0.0, metavar="SECONDS",
                     help="repeat every SECONDS with the current time (a live store); Ctrl-C stops")
    sim.add_argument("--rounds", type=int, default=None, metavar="N",
                     help="stop after N rounds (default: 1, or until Ctrl-C with --every; 0 = until Ctrl-C)")
    sim.set_defaults(func=cmd_demo_simulate)
    for name, func, help_text in (
        ("run", cmd_demo_run, "generate (once), start the sandbox, run set-up and the main job, print a summary"),
        ("prepare", cmd_demo_prepare, "create the demo folder without running anything"),
    ):
        p = demo.add_parser(name, help=help_text)
        p.add_argument("--customers", type=int, default=2000, help="web customers in a new demo database")
        p.add_argument("--seed", type=int, default=42, help="random seed of a new demo database")
        p.add_argument("--dir", default=".demo", help="the demo folder (default: .demo)")
        p.add_argument("--sandbox-port", type=int, default=8765, help="port of the local HubSpot sandbox")
        p.add_argument("--commerce", choices=COMMERCE_MODES, default="deals",
                       help="the panel's commerce.objects: deals (default), orders_and_carts or both")
        p.set_defaults(func=func)

    dev = sub.add_parser("dev", help="the sandbox and the Dagster UI on the demo data")
    dev.add_argument("--dir", default=".demo", help="the demo folder (default: .demo)")
    dev.add_argument("--sandbox-port", type=int, default=8765, help="port of the local HubSpot sandbox")
    dev.add_argument("--tracing-port", type=int, default=3001, help="port of the tracing page (default: 3001)")
    dev.add_argument("--ui-port", type=int, default=3000, help="port of the Dagster UI (default: 3000)")
    dev.set_defaults(func=cmd_dev)

    sync = sub.add_parser("sync", help="run the main job with the current environment")
    sync.add_argument("--dry-run", action="store_true", help="compute and report changes, write nothing")
    sync.add_argument("--full", action="store_true", help="read every source row (and flag records deleted in the "
                      "source), not only what changed since the last successful run")
    sync.set_defaults(func=cmd_sync)
    __import__("fp_hubspot_assets.cli_setup", fromlist=["add_commands"]).add_commands(sub)
    __import__("fp_hubspot_assets.cli_trace", fromlist=["add_commands"]).add_commands(sub)
    __import__("fp_hubspot_assets.cli_doctor", fromlist=["add_command"]).add_command(sub)

    from fp_hubspot_assets.sandbox.server import add_arguments

    sandbox = sub.add_parser("sandbox", help="the local HubSpot-compatible API server")
    add_arguments(sandbox)
    sandbox.set_defaults(func=cmd_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from fp_hubspot_assets.preflight import PreflightError
    from fp_hubspot_assets.sandbox.testing import PortBusyError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PortBusyError as exc:  # one line, not a traceback: the demo must not use someone else's sandbox
        raise SystemExit(f"fp-hubspot: {exc}") from None
    except PreflightError as exc:  # one line, what/where/how to fix: no traceback for a set-up mistake
        print(f"fp-hubspot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
