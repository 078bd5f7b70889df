"""``fp-hubspot log`` and ``fp-hubspot trace``: search the integration log and tell one record's story.
The questions are answered by state/queries.py and tracing.py; this module only formats."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import UTC, datetime
from typing import Any

LOG_COLUMNS = ("logged_at", "run_id", "object_type", "source_key", "action", "hubspot_id", "error_category", "message")


def _when(text: str) -> datetime:
    """An ISO date or date-time; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or date-time (2026-11-28 or 2026-11-28T09:30)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return value


def _store() -> Any:
    from fp_hubspot_assets.cli.sync import ensure_environment
    from fp_hubspot_assets.state.store import StateStore

    ensure_environment()
    return StateStore(StateStore.default_url())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def cmd_log(args: argparse.Namespace) -> int:
    from fp_hubspot_assets.state.queries import LogQuery, search_log

    query = LogQuery(
        key=args.key, hubspot_id=args.hubspot_id, object_type=args.type, action=args.action, reason=args.reason,
        text=args.text, run=args.run, since=args.since, until=args.until,
    )
    with _store() as store:
        page = search_log(store, query, limit=args.limit, offset=(args.page - 1) * args.limit)
    rows = [{c: row[c] for c in LOG_COLUMNS} for row in page.rows.iter_rows(named=True)]
    if args.json:
        print(json.dumps({"total": page.total, "offset": page.offset, "rows": rows}, default=_text, indent=2))
        return 0
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        writer.writerows({c: _text(v) for c, v in r.items()} for r in rows)
        return 0
    print(_page_line(page.total, page.offset, len(rows), args.page))
    for r in rows:
        reason = f" [{r['error_category']}]" if r["error_category"] else ""
        hs = f" hs:{r['hubspot_id']}" if r["hubspot_id"] else ""
        print(f"{_text(r['logged_at'])}  run {r['run_id'][:8]}  {r['object_type']:<10} {r['source_key']:<14} "
              f"{r['action']:<9}{hs}{reason} {r['message'] or ''}".rstrip())
    return 0


def _page_line(total: int, offset: int, shown: int, page: int) -> str:
    if not total:
        return "no integration-log rows match"
    more = f"; --page {page + 1} for more" if offset + shown < total else ""
    return f"rows {offset + 1}–{offset + shown} of {total}, newest first{more}"


def cmd_trace(args: argparse.Namespace) -> int:
    from fp_hubspot_assets.panel import load_panel
    from fp_hubspot_assets.preflight import sap_reader_from_env
    from fp_hubspot_assets.tracing import read_sources, trace

    with _store() as store:
        settings = load_panel()
        frames = None
        if not args.no_source:
            with sap_reader_from_env() as reader:
                frames = read_sources(reader)
        result = trace(store, args.key, settings, frames)
    if args.json:
        print(json.dumps(result.as_dict(), default=_text, indent=2))
        return 0
    print("\n".join(format_trace(result.as_dict())))
    return 0 if (result.mappings or result.log or result.source) else 1


def format_trace(t: dict[str, Any]) -> list[str]:
    lines = [f"trace {t['key']}"]
    lines.append("HubSpot:")
    if not t["hubspot"]:
        lines.append("  not in the ID map (never synced, or skipped — see the log below)")
    for m in t["hubspot"]:
        link = m["url"] or "(set FP_HUBSPOT_PORTAL_ID for a link to the record)"
        lines.append(f"  {m['object_type']} {m['hubspot_id']}  synced {_text(m['synced_at'])}  {link}")
    lines.append("associations:")
    lines.extend(f"  {a['direction']} {a['object_type']} {a['other_key']} (type {a['type_id']})" for a in t["associations"])
    if not t["associations"]:
        lines.append("  none recorded")
    for object_type, p in t["payloads"].items():
        lines.append(f"payload computed now ({object_type}):")
        if p["record"]:
            lines.extend(f"  {k} = {v!r}" for k, v in p["record"].items() if k != "source_key" and v not in ("", None))
        lines.extend(f"  issue: {i['action']} — {i['reason']}" for i in p["issues"])
    for s in t["source"]:
        shown = {k: v for k, v in s["row"].items() if v not in (None, "", []) and not isinstance(v, list)}
        lines.append(f"source {s['entity']}: " + ", ".join(f"{k}={_text(v)}" for k, v in shown.items()))
    lines.append(f"integration log ({len(t['log'])} rows, newest first):")
    for r in t["log"]:
        reason = f" [{r['error_category']}]" if r["error_category"] else ""
        lines.append(f"  {_text(r['logged_at'])}  run {r['run_id'][:8]}  {r['object_type']} {r['action']}{reason} "
                     f"{r['message'] or ''}".rstrip())
    return lines


def cmd_tracing_page(args: argparse.Namespace) -> int:
    """Serve the tracing page until Ctrl-C."""
    import uvicorn

    from fp_hubspot_assets.preflight import sap_time_zone_from_env, sap_url_from_env
    from fp_hubspot_assets.tracing_page import create_app

    store = _store()
    app = create_app(store, sap_url_from_env(), time_zone=sap_time_zone_from_env())
    print(f"tracing page: http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def add_commands(sub: Any) -> None:
    log = sub.add_parser("log", help="search the integration log (newest first, paged)",
                         description="Search the integration log: every filter is optional and they combine.")
    log.add_argument("--key", help="source key, e.g. W39, O13; * is a wildcard (O13* = the deal and its lines)")
    log.add_argument("--hubspot-id", help="HubSpot record id")
    log.add_argument("--type", help="object type: contacts, companies, products, deals, line_items, orders, carts (or a source "
                     "entity such as customers for unreadable source rows)")
    log.add_argument("--action", help="created, updated, adopted, skipped, failed, repaired, archived")
    log.add_argument("--reason", help="reason code, e.g. SOURCE_DATA, VALIDATION_ERROR")
    log.add_argument("--text", help="text in the message or key (case-insensitive), e.g. an email address")
    log.add_argument("--run", help="Dagster run id or its first characters")
    log.add_argument("--since", type=_when, help="from this UTC date or date-time (ISO)")
    log.add_argument("--until", type=_when, help="before this UTC date or date-time (ISO)")
    log.add_argument("--limit", type=_positive, default=50, help="rows per page (default: 50)")
    log.add_argument("--page", type=_positive, default=1, help="page number, 1 = newest rows (default: 1)")
    fmt = log.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON (total, offset, rows) for export")
    fmt.add_argument("--csv", action="store_true", help="print CSV for export")
    log.set_defaults(func=cmd_log)

    tr = sub.add_parser("trace", help="one record's story: source rows, payload, HubSpot link, associations, log",
                        description="Everything about one source key (W39, BPC0001, O13, O13:L1, I100 …).")
    tr.add_argument("key", help="the source key")
    tr.add_argument("--json", action="store_true", help="print JSON")
    tr.add_argument("--no-source", action="store_true",
                    help="skip reading the SAP/FocusPoint source (no source rows or computed payload)")
    tr.set_defaults(func=cmd_trace)

    page = sub.add_parser("tracing-page", help="serve the tracing page: record grid, integration log, traces")
    page.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    page.add_argument("--port", type=int, default=3001, help="port (default: 3001)")
    page.set_defaults(func=cmd_tracing_page)
