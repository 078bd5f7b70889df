"""``fp-demo``: the demo store (a generated SAP Business One + FocusPoint database), a live store for the
sensors, the demo run against the local HubSpot sandbox, and the sandbox plus the Dagster UI for ``make dev``.

Tooling, not the product: ``fp-hubspot`` (the product's command) never imports this package."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from fp_hubspot_assets.cli.sync import demo_env, run_main_job, summary_line
from fp_hubspot_assets.objects import COMMERCE_MODES

REPO_ROOT = Path(__file__).resolve().parent.parent


def cmd_demo_generate(args: argparse.Namespace) -> int:
    from fp_demo_store.generate import generate

    counts = generate(args.url, args.customers, seed=args.seed)
    print(f"generated {args.url}: " + ", ".join(f"{t}={n}" for t, n in counts.items()))
    return 0


def cmd_demo_simulate(args: argparse.Namespace) -> int:
    """One burst of store activity, or with ``--every`` a live store: a burst every N seconds, stamped with
    the real current time so new carts are fresh (the sensors and the incremental schedule pick them up)."""
    import time
    from datetime import UTC, datetime

    from fp_demo_store.generate import simulate

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
def prepare_demo(demo_dir: Path, customers: int, seed: int, sandbox_url: str, commerce: str = "deals") -> dict[str, str]:
    """Create the demo folder: Dagster home (with our dagster.yaml), SAP database, panel file (its
    ``commerce.objects`` set to ``commerce``)."""
    from fp_demo_store.generate import generate

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
        "# written by `fp-demo`: the example panel pointed at the local sandbox\n"
        + example.replace("  base_url: null", f"  base_url: {sandbox_url}").replace(
            "  objects: deals ", f"  objects: {commerce} "
        ),
        encoding="utf-8",
    )
    os.environ.update(env)
    return env


def cmd_demo_run(args: argparse.Namespace) -> int:
    from hubspot_sandbox.testing import running_sandbox

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
    from hubspot_sandbox.testing import running_sandbox

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
    from hubspot_sandbox.server import run_from_args

    run_from_args(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fp-demo", description="The demo store, the local HubSpot sandbox and the "
                                     "Dagster UI on them (for trying fp-hubspot without SAP or a HubSpot account).")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a demo SAP Business One + FocusPoint database")
    gen.add_argument("--customers", type=int, default=2000, help="web customers to generate (default: 2000)")
    gen.add_argument("--seed", type=int, default=42, help="random seed: the same seed gives the same data")
    gen.add_argument("--url", default="sqlite:///.demo/sap.db", help="SQLAlchemy URL of the database to write")
    gen.set_defaults(func=cmd_demo_generate)
    sim = sub.add_parser("simulate", help="add new carts, orders and changes to a demo database")
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
        p = sub.add_parser(name, help=help_text)
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

    from hubspot_sandbox.server import add_arguments

    sandbox = sub.add_parser("sandbox", help="the local HubSpot-compatible API server")
    add_arguments(sandbox)
    sandbox.set_defaults(func=cmd_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from hubspot_sandbox.testing import PortBusyError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PortBusyError as exc:  # one line, not a traceback: the demo must not use someone else's sandbox
        raise SystemExit(f"fp-demo: {exc}") from None


if __name__ == "__main__":
    raise SystemExit(main())
