"""The tracing page: a small read-only web page with the panel's two tracing views — the record grid per
object type (every record, filtered, sorted and paged on the server) and the integration log (the same
filters as ``fp-hubspot log``) — plus one record's trace. Server-rendered HTML, no JavaScript; it only
reads the state store and the source database. Served on 127.0.0.1 by ``fp-hubspot tracing-page``."""

from __future__ import annotations

import html
import threading
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import polars as pl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fp_hubspot_assets import mapping
from fp_hubspot_assets.cli.trace import format_trace
from fp_hubspot_assets.panel import PanelSettings, load_panel
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state.queries import LogQuery, search_log
from fp_hubspot_assets.state.store import StateStore
from fp_hubspot_assets.tracing import (
    GRID_COLUMNS,
    TRACED_TYPES,
    compute_payloads,
    read_sources,
    record_grid,
    record_url,
    trace,
    traced_types,
)

PAGE_SIZE = 100
DEFAULT_PORT = 3001
OBJECT_TYPES = TRACED_TYPES  # a tab each; orders and carts only when commerce.objects syncs them (traced_types)
HEADINGS = {"source_key": "key", "label": "name", "email": "email", "stage": "stage", "amount": "amount",
            "hubspot_id": "HubSpot", "last_action": "last action", "last_at": "when", "note": "note"}
LOG_FILTERS = ("key", "hubspot_id", "type", "action", "reason", "text", "run", "since", "until")
STYLE = """
body{font:14px system-ui,sans-serif;margin:0 1.5em 2em;color:#1f2937}
nav{display:flex;gap:1em;padding:.8em 0;border-bottom:1px solid #ddd;margin-bottom:1em}
nav a{text-decoration:none;color:#2563eb}nav a.on{font-weight:600;color:#111}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #eee;
vertical-align:top;white-space:nowrap}th a{color:inherit}td.msg{min-width:16em;max-width:32em;white-space:pre-wrap;word-break:break-word}
td.run{font-family:monospace;white-space:nowrap}form{margin:.5em 0 1em;display:flex;flex-wrap:wrap;gap:.5em}
.pager{margin:.8em 0;display:flex;gap:1em;align-items:center}pre{background:#f6f8fa;padding:1em;overflow:auto}
"""


class Sources:
    """The mapping's current payloads, recomputed at most every ``ttl`` seconds (the grid needs names,
    emails, stages and amounts, which the state store does not keep)."""

    def __init__(self, sap_url: str, settings: PanelSettings, ttl: float = 60.0, time_zone: str = "UTC") -> None:
        self.sap_url, self.settings, self.ttl, self.time_zone = sap_url, settings, ttl, time_zone
        self._lock = threading.Lock()
        self._at = -ttl
        self.frames: dict[str, pl.DataFrame] = {}
        self.payloads: dict[str, mapping.Mapped] = {}

    def current(self) -> tuple[dict[str, pl.DataFrame], dict[str, mapping.Mapped]]:
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                with SapReader(self.sap_url, time_zone=self.time_zone) as reader:
                    self.frames = read_sources(reader)
                self.payloads = compute_payloads(self.frames, self.settings)
                self._at = time.monotonic()
            return self.frames, self.payloads


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return html.escape(str(value))


def _page(title: str, active: str, body: str, types: tuple[str, ...]) -> HTMLResponse:
    tabs = [(f"/records/{t}", t.replace("_", " "), t) for t in types] + [("/log", "integration log", "log")]
    nav = "".join(f'<a href="{href}" class="{"on" if key == active else ""}">{label}</a>' for href, label, key in tabs)
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset=utf-8><title>{_e(title)} · FocusPoint → HubSpot tracing</title>"
        f"<style>{STYLE}</style></head><body><nav><strong>Tracing</strong>{nav}</nav><h1>{_e(title)}</h1>{body}</body></html>"
    )


def _pager(request: Request, total: int, page: int) -> str:
    pages = max(1, -(-total // PAGE_SIZE))
    first, last = (page - 1) * PAGE_SIZE + 1, min(page * PAGE_SIZE, total)
    if first > total:
        first = last = 0

    def link(to: int, label: str, ident: str) -> str:
        query = urlencode({**dict(request.query_params), "page": to})
        return f'<a id="{ident}" href="?{query}">{label}</a>'

    parts = [f'<span id="range">rows {first if total else 0}–{last} of {total} (page {page} of {pages})</span>']
    if page > 1:
        parts.append(link(page - 1, "← newer" if request.url.path == "/log" else "← previous", "prev"))
    if page < pages and last:
        parts.append(link(page + 1, "older →" if request.url.path == "/log" else "next →", "next"))
    return f'<div class="pager">{"".join(parts)}</div>'


def _int(request: Request, name: str, default: int) -> int:
    try:
        return max(1, int(request.query_params.get(name, default)))
    except ValueError:
        return default


def create_app(
    store: StateStore, sap_url: str, settings: PanelSettings | None = None, ttl: float = 60.0, time_zone: str = "UTC"
) -> Starlette:
    settings = settings or load_panel()
    sources = Sources(sap_url, settings, ttl, time_zone)
    types = traced_types(settings)

    async def home(request: Request) -> Response:
        return RedirectResponse("/records/contacts")

    async def records(request: Request) -> Response:
        object_type = request.path_params["object_type"]
        if object_type not in types:
            why = (f"commerce.objects is {settings.commerce.objects}: {object_type} are not synced"
                   if object_type in OBJECT_TYPES else f"unknown object type {object_type}")
            return _page("not found", "", f"<p>{_e(why)}</p>", types)
        frames, payloads = sources.current()
        grid = record_grid(store, object_type, payloads[object_type], frames.get("customers"))
        q = request.query_params.get("q", "").strip()
        if q:
            needle = q.lower()
            columns = ("source_key", "label", "email", "hubspot_id", "note")
            grid = grid.filter(pl.any_horizontal([pl.col(c).str.to_lowercase().str.contains(needle, literal=True) for c in columns]))
        sort = request.query_params.get("sort", "source_key")
        sort = sort if sort in GRID_COLUMNS else "source_key"
        desc = request.query_params.get("desc") == "1"
        by = pl.col(sort).cast(pl.Float64, strict=False) if sort == "amount" else pl.col(sort)
        grid = grid.sort(by, descending=desc, nulls_last=True)
        page = _int(request, "page", 1)
        shown = grid.slice((page - 1) * PAGE_SIZE, PAGE_SIZE)

        def heading(column: str) -> str:
            flip = "1" if column == sort and not desc else "0"
            query = urlencode({"q": q, "sort": column, "desc": flip})
            mark = (" ▼" if desc else " ▲") if column == sort else ""
            return f'<th><a href="?{query}">{HEADINGS[column]}{mark}</a></th>'

        rows = []
        for r in shown.iter_rows(named=True):
            url = record_url(settings, object_type, r["hubspot_id"]) if r["hubspot_id"] else None
            link = f'<a href="{_e(url)}">{_e(r["hubspot_id"])}</a>' if url else _e(r["hubspot_id"])
            key = f'<a href="/trace/{quote(r["source_key"], safe="")}">{_e(r["source_key"])}</a>'
            cells = [key, _e(r["label"]), _e(r["email"]), _e(r["stage"]), _e(r["amount"]), link,
                     _e(r["last_action"]), _e(r["last_at"])]
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + f'<td class="msg">{_e(r["note"])}</td></tr>')
        form = (f'<form method="get"><input type="hidden" name="sort" value="{_e(sort)}">'
                f'<input type="hidden" name="desc" value="{"1" if desc else "0"}">'
                f'<input id="q" name="q" value="{_e(q)}" placeholder="key, name, email, HubSpot id, note" size="40">'
                '<button id="filter" type="submit">Filter</button></form>')
        table = (f'<table id="grid"><tr>{"".join(heading(c) for c in GRID_COLUMNS)}</tr>{"".join(rows)}</table>')
        body = form + _pager(request, grid.height, page) + table + _pager(request, grid.height, page)
        return _page(f"{object_type.replace('_', ' ')}: records", object_type, body, types)

    async def log(request: Request) -> Response:
        params = request.query_params
        error = ""
        try:
            query = LogQuery(
                key=params.get("key") or None, hubspot_id=params.get("hubspot_id") or None,
                object_type=params.get("type") or None, action=params.get("action") or None,
                reason=params.get("reason") or None, text=params.get("text") or None, run=params.get("run") or None,
                since=_moment(params.get("since")), until=_moment(params.get("until")),
            )
        except ValueError as exc:
            query, error = LogQuery(), f'<p id="error">{_e(exc)}</p>'
        page = _int(request, "page", 1)
        found = search_log(store, query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        inputs = "".join(
            f'<input id="f-{n}" name="{n}" value="{_e(params.get(n, ""))}" placeholder="{n.replace("_", " ")}" size="12">'
            for n in LOG_FILTERS
        )
        form = f'<form method="get">{inputs}<button id="search" type="submit">Search</button></form>'
        head = "".join(f"<th>{h}</th>" for h in ("when", "run", "type", "key", "action", "HubSpot", "reason", "message"))
        rows = []
        for r in found.rows.iter_rows(named=True):
            key = f'<a href="/trace/{quote(r["source_key"], safe="")}">{_e(r["source_key"])}</a>'
            cells = [_e(r["logged_at"]), f'<span title="{_e(r["run_id"])}">{_e(r["run_id"][:8])}</span>',
                     _e(r["object_type"]), key, _e(r["action"]), _e(r["hubspot_id"]), _e(r["error_category"])]
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + f'<td class="msg">{_e(r["message"])}</td></tr>')
        body = (form + error + _pager(request, found.total, page)
                + f'<table id="log"><tr>{head}</tr>{"".join(rows)}</table>')
        return _page("integration log (newest first)", "log", body, types)

    async def trace_view(request: Request) -> Response:
        key = request.path_params["key"]
        frames, _payloads = sources.current()
        story = trace(store, key, settings, frames).as_dict()
        links = "".join(
            f'<li>{_e(m["object_type"])} <a id="hubspot-link" href="{_e(m["url"])}">{_e(m["hubspot_id"])}</a></li>'
            if m["url"] else f'<li>{_e(m["object_type"])} {_e(m["hubspot_id"])}</li>'
            for m in story["hubspot"]
        )
        body = (f'<ul>{links or "<li>not in HubSpot (never synced, or skipped: see below)</li>"}</ul>'
                f'<p><a href="/log?{urlencode({"key": key})}">this key in the integration log</a></p>'
                f'<pre id="trace">{_e(chr(10).join(format_trace(story)))}</pre>')
        return _page(f"trace {key}", "", body, types)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[
        Route("/", home),
        Route("/records/{object_type}", records),
        Route("/log", log),
        Route("/trace/{key:path}", trace_view),
        Route("/health", health),
    ])


def _moment(text: str | None) -> datetime | None:
    from fp_hubspot_assets.cli.trace import _when

    if not text:
        return None
    try:
        return _when(text)
    except Exception as exc:  # argparse.ArgumentTypeError: say which value, show the unfiltered log
        raise ValueError(str(exc)) from exc
