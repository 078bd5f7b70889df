"""Command line of the sandbox: `hubspot-sandbox ...` (or `fp-demo sandbox ...`) or `python -m hubspot_sandbox`."""

from __future__ import annotations

import argparse
from pathlib import Path

from .app import SandboxConfig, build_app
from .catalog import ACCOUNT_TIME_ZONE, TIERS, canonical_type
from .faults import parse_faults


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError("use on or off")
    return value == "on"


def _types(value: str) -> tuple[str, ...]:
    types = tuple(canonical_type(v.strip()) or "" for v in value.split(",") if v.strip())
    if "" in types:
        raise argparse.ArgumentTypeError(f"unknown object type in {value!r}")
    return types


def _zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone {value!r}") from None
    return value


def _faults(value: str) -> str:
    try:
        parse_faults(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    parser.add_argument("--state", type=Path, default=None,
                        help="SQLite file holding the portal's data across restarts (default: memory only)")
    parser.add_argument("--token", action="append", dest="tokens", metavar="T",
                        help="accepted private-app bearer token; repeatable (default: sandbox-token)")
    parser.add_argument("--tier", choices=sorted(TIERS), default="professional", help="subscription tier (rate budget)")
    parser.add_argument("--rate-limits", type=_on_off, default=False, metavar="on|off",
                        help="enforce HubSpot's rate budgets (default off)")
    parser.add_argument("--rate-window-seconds", type=float, default=10.0,
                        help="rolling window length; the budget scales with it (default 10)")
    parser.add_argument("--daily-limit", type=int, default=None, help="override the tier's daily request budget")
    parser.add_argument("--requests-per-ten-seconds", type=int, default=None, metavar="N",
                        help="override the tier's 10-second budget; the rate headers announce it, so a client "
                             "following them speeds up (a benchmark priming a big store; default: the tier's)")
    parser.add_argument("--faults", type=_faults, default=None,
                        help='fault shares, e.g. "500=0.05,503=0.01,429=0.02,slow=0.01,drop=0.01"')
    parser.add_argument("--fault-seed", type=int, default=None, help="seed for reproducible fault injection")
    parser.add_argument("--slow-seconds", type=float, default=2.0, help="delay of a 'slow' fault (default 2)")
    parser.add_argument("--search-delay", type=float, default=0.0, metavar="SECONDS",
                        help="how long new writes stay invisible to search (default 0)")
    parser.add_argument("--token-ttl", type=float, default=1800.0, metavar="SECONDS",
                        help="lifetime of OAuth access tokens (default 1800)")
    parser.add_argument("--client-id", default="sandbox-client-id", help="registered OAuth client id")
    parser.add_argument("--client-secret", default="sandbox-client-secret", help="registered OAuth client secret")
    parser.add_argument("--batch-errors", choices=("whole", "partial"), default="whole",
                        help="whole: one invalid or duplicate input fails a batch update/upsert with one error "
                             "naming it, as HubSpot does (default); partial: 207 keeping the good inputs")
    parser.add_argument("--lenient-values", type=_on_off, default=False, metavar="on|off",
                        help="accept numbers like 1_000 or NaN, dates with a time of day, any currency and "
                             "line items pointing at missing products (default off: HubSpot's validation)")
    parser.add_argument("--no-unique-on", type=_types, default=(), metavar="TYPES",
                        help="object types (comma-separated, e.g. products,line_items) that refuse "
                             "hasUniqueValue properties")
    parser.add_argument("--time-zone", type=_zone, default=ACCOUNT_TIME_ZONE,
                        help=f"the account's time zone: its midnight resets the daily limit (default {ACCOUNT_TIME_ZONE})")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    return SandboxConfig(
        state=args.state, tokens=args.tokens or ["sandbox-token"], tier=args.tier, rate_limits=args.rate_limits,
        rate_window_seconds=args.rate_window_seconds, daily_limit=args.daily_limit,
        requests_per_ten_seconds=args.requests_per_ten_seconds, faults=args.faults,
        fault_seed=args.fault_seed, slow_seconds=args.slow_seconds, search_delay=args.search_delay,
        token_ttl=args.token_ttl, client_id=args.client_id, client_secret=args.client_secret,
        batch_errors=args.batch_errors, lenient_values=args.lenient_values, no_unique_on=args.no_unique_on,
        time_zone=args.time_zone,
    )


def run_from_args(args: argparse.Namespace) -> None:
    """Serve until SIGINT/SIGTERM; the state file is flushed and closed on the way out."""
    import uvicorn

    app = build_app(config_from_args(args))
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                lifespan="on", timeout_graceful_shutdown=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hubspot-sandbox", description="Local HubSpot-compatible API server")
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))
