"""Vectorized building blocks shared by the mappers: text/email/phone/number/date normalization, issue
frames, key hygiene and the final hardening pass every record frame goes through.

Everything here returns polars expressions or frames; nothing loops over rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache

import phonenumbers
import polars as pl
import pycountry
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from fp_hubspot_assets.mapping.model import (
    ALIASES_SCHEMA,
    ID_PROPERTY,
    ISSUES_SCHEMA,
    PROPERTIES,
    REFERENCES,
    REPAIRED,
    SKIPPED,
    Mapped,
)

HUBSPOT_MAX_CHARS = 65_536  # HubSpot's limit for one property value
MAX_DECIMAL = 1e15  # beyond this a float has no exact cents left; such amounts are bad input, not money
MIN_DATE = datetime(1970, 1, 1)
MAX_DATE = datetime(2101, 1, 1)  # exclusive: 2100 is the last accepted year

# Local parts as HubSpot accepts them (RFC 5322 "atext" and dots); domains as LDH labels with a real TLD
# (letters, or an IDN "xn--" label). Checked on the already-lowercased, space-free address.
_EMAIL_RE = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)


# ── text ─────────────────────────────────────────────────────────────────────────────────────────────


def text(expr: pl.Expr) -> pl.Expr:
    """NUL bytes removed, surrounding whitespace trimmed; null stays null."""
    return expr.str.replace_all("\x00", "", literal=True).str.strip_chars()


def non_empty(expr: pl.Expr) -> pl.Expr:
    """``expr`` trimmed, or null when nothing but whitespace/NUL is in it, so ``coalesce`` skips blanks.
    NUL bytes are left in on purpose: ``finalize`` removes them from outgoing properties and reports it."""
    return pl.when(text(expr).str.len_chars() > 0).then(expr.str.strip_chars())


def normalize_email(expr: pl.Expr) -> pl.Expr:
    """Lowercase, every whitespace (inner too) and NUL removed; null when nothing is left."""
    cleaned = expr.str.replace_all(r"[\s\x00]+", "").str.to_lowercase()
    return pl.when(cleaned.str.len_chars() > 0).then(cleaned)


def _within_limits(address: pl.Expr) -> pl.Expr:
    """RFC 5321's lengths (the whole address ≤ 254, the part before the @ ≤ 64) and no special-use domain
    (``.test``, ``.localhost``, …: never a real mailbox)."""
    special = "|".join(SPECIAL_USE_DOMAIN_NAMES)
    return (
        (address.str.len_chars() <= 254)
        & address.str.contains(r"^[^@]{1,64}@")
        & ~address.str.contains(rf"\.({special})$")
    ).fill_null(False)


@lru_cache(maxsize=65_536)
def _checked_email(address: str) -> str | None:
    """``email-validator``'s verdict on one address: its ASCII form (an internationalised domain becomes
    punycode, as HubSpot stores it) or None. Non-ASCII before the @ is refused: HubSpot cannot store it."""
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return (checked.ascii_email or "").lower() or None


def _map_unique(expr: pl.Expr, fn: Callable[[str], str | None]) -> pl.Expr:
    """``fn`` applied once per distinct value (most columns repeat values; the calls are Python)."""

    def run(series: pl.Series) -> pl.Series:
        distinct = series.drop_nulls().unique()
        table = dict(zip(distinct.to_list(), [fn(v) for v in distinct.to_list()], strict=True))
        return series.replace_strict(table, default=None, return_dtype=pl.String)

    return expr.map_batches(run, return_dtype=pl.String)


def valid_email(normalized: pl.Expr) -> pl.Expr:
    """The address HubSpot is sent (ASCII, lower case) or null when it is not a valid address.

    Plain ASCII addresses pass the vectorised syntax rule; everything else (internationalised domains,
    anything the rule refuses) is decided by ``email-validator``."""
    plain = normalized.str.contains(_EMAIL_RE).fill_null(False)
    # only the rest goes through the library (one Python call per distinct address; plain ones stay vectorised)
    checked = pl.coalesce(pl.when(plain).then(normalized), _map_unique(pl.when(~plain).then(normalized), _checked_email))
    return pl.when(_within_limits(checked)).then(checked)


def email_is_valid(normalized: pl.Expr) -> pl.Expr:
    """True for a valid (normalized) address HubSpot accepts; false for null."""
    return valid_email(normalized).is_not_null()


def email_domain(normalized: pl.Expr) -> pl.Expr:
    return normalized.str.extract(r"@([^@]+)$", 1)


def normalize_phone(expr: pl.Expr) -> pl.Expr:
    """Trimmed, inner whitespace runs collapsed; null when it holds no digit at all (not a phone)."""
    cleaned = expr.str.strip_chars().str.replace_all(r"\s+", " ")
    return pl.when(cleaned.str.contains(r"\d")).then(cleaned)


@lru_cache(maxsize=65_536)
def _e164(phone_and_region: str) -> str | None:
    """"<phone>\t<ISO country or empty>" → the number in E.164, or None when it is not a valid number."""
    phone, _, region = phone_and_region.partition("\t")
    try:
        number = phonenumbers.parse(phone, region or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def with_clean_phone(frame: pl.DataFrame, country: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``phone`` in E.164 (read with the record's ``country`` column, an ISO code, when given); a phone that
    cannot be read as a valid number is kept as typed (whitespace collapsed) and reported."""
    typed = pl.col("phone").str.strip_chars().str.replace_all(r"\s+", " ")
    typed = pl.when(typed.str.len_chars() > 0).then(typed)
    region = country_code(pl.col(country)) if country else pl.lit(None, dtype=pl.String)
    # already international ("+49 30 1234567", "+1-555-010-0199"): E.164 is the digits after the "+", no lookup
    # needed; national numbers, "(0)" and anything else are read by phonenumbers with the address's country
    compact = typed.str.replace_all(r"[ \-./]", "")
    international = compact.str.contains(r"^\+[1-9]\d{7,14}$").fill_null(False)
    looked_up = _map_unique(pl.when(~international).then(pl.concat_str([typed, region.fill_null("")], separator="\t")), _e164)
    e164 = pl.coalesce(pl.when(international).then(compact), looked_up)
    cleaned = frame.with_columns(typed.alias("_typed"), e164.alias("_e164"), region.alias("_region"))
    kept = issues_where(
        cleaned,
        pl.col("_typed").is_not_null() & pl.col("_e164").is_null(),
        REPAIRED,
        pl.format(
            "phone '{}' is not a valid number{}; sent as typed",
            preview(pl.col("_typed")),
            pl.when(pl.col("_region").is_not_null()).then(pl.format(" for {}", pl.col("_region"))).otherwise(pl.lit("")),
        ),
    )
    cleaned = cleaned.with_columns(pl.coalesce("_e164", "_typed").alias("phone"))
    return cleaned.drop("_typed", "_e164", "_region"), kept


@lru_cache(maxsize=4096)
def _iso_country(value: str) -> str | None:
    """A country name, alpha-2/alpha-3 or numeric code (any case) → ISO 3166-1 alpha-2, or None."""
    try:
        return str(pycountry.countries.lookup(value.strip()).alpha_2)
    except LookupError:
        return None


def country_code(expr: pl.Expr) -> pl.Expr:
    """The ISO 3166-1 alpha-2 code of a country name or code; null when ``pycountry`` does not know it."""
    return _map_unique(expr, _iso_country)


def with_country_codes(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``country`` as its ISO alpha-2 code; a value no country matches is sent as written and reported."""
    coded = frame.with_columns(country_code(pl.col("country")).alias("_code"))
    unknown = issues_where(
        coded,
        non_empty(pl.col("country")).is_not_null() & pl.col("_code").is_null(),
        REPAIRED,
        pl.format("country '{}' is not a known country name or ISO code; sent as written", preview(pl.col("country"))),
    )
    return coded.with_columns(pl.coalesce("_code", "country").alias("country")).drop("_code"), unknown


def join_sorted(list_expr: pl.Expr) -> pl.Expr:
    """A list of strings as HubSpot multi-value text: trimmed, blanks dropped, unique, sorted, ";"-joined.
    (One ``list.eval`` pass: per-list native ops cost more than one evaluated pipeline on 1M rows.)"""
    element = text(pl.element())
    return list_expr.list.eval(element.filter(element.str.len_chars() > 0).unique().sort()).list.join(";")


# ── numbers and dates ────────────────────────────────────────────────────────────────────────────────


def decimal_string(expr: pl.Expr) -> pl.Expr:
    """A finite float as a plain decimal string ("19.99", "3", "-0.5"; at most 6 decimals, never an
    exponent). Null for null, NaN, ±inf and magnitudes ≥ 1e15 — callers decide what that means."""
    rounded = expr.cast(pl.Float64).round(6)
    as_text = rounded.cast(pl.String).str.replace(r"\.0$", "")
    ok = rounded.is_finite() & (rounded.abs() < MAX_DECIMAL)
    return pl.when(ok & (rounded == 0)).then(pl.lit("0")).when(ok).then(as_text)


def bad_number(expr: pl.Expr) -> pl.Expr:
    """NaN, infinite or out of range (null is not "bad": it is missing)."""
    value = expr.cast(pl.Float64)
    return value.is_not_null() & ~(value.is_finite() & (value.abs() < MAX_DECIMAL))


def date_in_range(expr: pl.Expr) -> pl.Expr:
    return (expr >= MIN_DATE) & (expr < MAX_DATE)


def iso_datetime(expr: pl.Expr) -> pl.Expr:
    """UTC ISO-8601 with milliseconds and "Z" (HubSpot date-time); null outside 1970..2100 or null.
    Canonical datetimes are naive UTC."""
    return pl.when(date_in_range(expr)).then(expr.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))


def naive_utc(moment: datetime) -> datetime:
    """``now`` as the canonical frames hold time: naive, in UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


# ── keys ─────────────────────────────────────────────────────────────────────────────────────────────


def natural_order(column: str) -> list[pl.Expr]:
    """Sort keys that order ids numerically within a prefix ("CP9" before "CP10")."""
    return [pl.col(column).str.len_chars(), pl.col(column)]


def valid_key(expr: pl.Expr) -> pl.Expr:
    """A usable source key: non-empty, no NUL, no surrounding whitespace, short enough for HubSpot."""
    return (
        (expr.str.len_chars() > 0)
        & ~expr.str.contains("\x00", literal=True)
        & (expr == expr.str.strip_chars())
        & (expr.str.len_chars() <= 255)
    ).fill_null(False)


def columns_of(frame: pl.DataFrame, *names: str) -> pl.DataFrame:
    """These columns of ``frame`` as a frame of their own, each as it is chunked: ``frame.select`` would first put
    every column of a differently chunked frame (one built from joins and frames put side by side) into one chunk."""
    return pl.DataFrame([frame.get_column(name) for name in names])


def keep_rows(frame: pl.DataFrame, condition: pl.Expr | pl.Series) -> pl.DataFrame:
    """``frame.filter(condition)``, returning ``frame`` itself when every row passes: at scale (millions of line
    items) a filter that drops nothing would still copy every column."""
    keep = condition if isinstance(condition, pl.Series) else frame.select(condition.fill_null(False)).to_series()
    return frame if keep.all() else frame.filter(keep)


def usable_rows(frame: pl.DataFrame, key: str, entity: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows with a valid, unique ``key``. Invalid keys are skipped; of duplicated keys the most recently
    updated row is kept (ties: the first) and the others skipped."""
    bad = frame.filter(~valid_key(pl.col(key)))
    problems = [
        # the key as far as it is printable: issues must stay loggable even for hostile keys
        issues_for(
            bad.with_columns(preview(pl.col(key).fill_null(""), 255)), key, SKIPPED, f"invalid {entity} key"
        )
    ]
    good = keep_rows(frame, valid_key(pl.col(key)))
    if not good.get_column(key).is_duplicated().any():
        return good, concat_issues(problems)
    order = ["updated_at", "_row"] if "updated_at" in good.columns else ["_row"]
    ranked = good.with_row_index("_row").sort(order, descending=[True, False][-len(order) :], nulls_last=True)
    first = ranked.get_column(key).is_first_distinct()
    problems.append(
        issues_for(
            ranked.filter(~first), key, SKIPPED, f"duplicate {entity} row; kept the most recently updated"
        )
    )
    kept = ranked.filter(first).sort("_row").drop("_row")
    return kept, concat_issues(problems)


# ── issues ───────────────────────────────────────────────────────────────────────────────────────────


def empty_issues() -> pl.DataFrame:
    return pl.DataFrame(schema=ISSUES_SCHEMA)


def empty_aliases() -> pl.DataFrame:
    return pl.DataFrame(schema=ALIASES_SCHEMA)


def issues_for(frame: pl.DataFrame, key: str, action: str, reason: str | pl.Expr) -> pl.DataFrame:
    """One issue per row of ``frame`` (already filtered to the problem rows)."""
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    return frame.select(
        pl.col(key).cast(pl.String).alias("source_key"),
        pl.lit(action, dtype=pl.String).alias("action"),
        reason_expr.cast(pl.String).alias("reason"),
    )


def issues_where(frame: pl.DataFrame, condition: pl.Expr, action: str, reason: str | pl.Expr) -> pl.DataFrame:
    """One issue per row of ``frame`` (keyed by ``source_key``) where ``condition`` holds."""
    # the filter gathers only the columns the issue reads, not every column of a wide frame (deals: millions of rows)
    reads = {"source_key", *condition.meta.root_names(), *(reason.meta.root_names() if isinstance(reason, pl.Expr) else ())}
    narrow = frame.select([c for c in frame.columns if c in reads])
    return issues_for(narrow.filter(condition.fill_null(False)), "source_key", action, reason)


def concat_issues(parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat([empty_issues(), *[p.select(ISSUES_SCHEMA.names()) for p in parts]], how="vertical")


def preview(expr: pl.Expr, width: int = 80) -> pl.Expr:
    """A value cut short for an issue message (reasons stay readable even for hostile input)."""
    cleaned = expr.str.replace_all("\x00", "", literal=True)
    return pl.when(cleaned.str.len_chars() > width).then(cleaned.str.slice(0, width) + "…").otherwise(cleaned)


# ── the final hardening pass ─────────────────────────────────────────────────────────────────────────


def empty_records(object_type: str) -> pl.DataFrame:
    return pl.DataFrame(
        schema={"source_key": pl.String}
        | {p: pl.String for p in PROPERTIES[object_type]}
        | {r: pl.String for r in REFERENCES[object_type]}
    )


def finalize(
    object_type: str,
    frame: pl.DataFrame,
    issues: Sequence[pl.DataFrame],
    aliases: pl.DataFrame | None = None,
) -> Mapped:
    """Shape ``frame`` into the records contract and harden every property value.

    ``frame`` holds ``source_key`` and every declared property and reference column (values may be null).
    Properties become non-null strings with NUL bytes removed, whitespace trimmed and at most
    ``HUBSPOT_MAX_CHARS`` characters; each removal/truncation is a "repaired" issue. The id property is
    set to ``source_key`` (keys were validated on the way in, so it is never altered).
    """
    records, repairs = _hardened(object_type, frame)
    _check_keys(object_type, records)
    return Mapped(
        object_type=object_type,
        records=records,
        issues=concat_issues([*issues, *repairs.values()]),
        aliases=aliases,
    )


def finalize_parts(object_type: str, parts: Iterable[tuple[pl.DataFrame, Sequence[pl.DataFrame]]]) -> Mapped:
    """``finalize`` of a frame mapped part by part, each part a (frame, issue frames) pair whose rows never depend
    on another part's (a deal's line items): only one part's intermediate columns exist at a time. The result is
    ``finalize`` of the whole: records in part order, issues kind by kind (the n-th issue frame of every part,
    then each repair), so every part must list the same kinds of issues."""
    records: list[pl.DataFrame] = []
    kinds: list[list[pl.DataFrame]] = []
    repairs: dict[str, list[pl.DataFrame]] = {}
    for frame, issues in parts:
        part, fixed = _hardened(object_type, frame)
        records.append(part)
        kinds.append(list(issues))
        for flag, found in fixed.items():
            repairs.setdefault(flag, []).append(found)
    whole = pl.concat(records) if records else empty_records(object_type)
    _check_keys(object_type, whole)
    by_kind = [frame for kind in zip(*kinds, strict=True) for frame in kind]
    ordered = [frame for flag in _flag_columns(object_type) for frame in repairs.get(flag, [])]
    return Mapped(object_type=object_type, records=whole, issues=concat_issues([*by_kind, *ordered]))


def _payload_properties(object_type: str) -> list[str]:
    return [p for p in PROPERTIES[object_type] if p != ID_PROPERTY[object_type]]


def _flag_columns(object_type: str) -> list[str]:
    """The hardening pass's flags, in the order its repairs are reported."""
    payload = _payload_properties(object_type)
    return [*[f"_nul_{p}" for p in payload], *[f"_long_{p}" for p in payload]]


def _hardened(object_type: str, frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """(the records of ``frame``, per raised flag its repaired issues); see ``finalize``."""
    props = PROPERTIES[object_type]
    refs = REFERENCES[object_type]
    id_prop = ID_PROPERTY[object_type]
    missing = [c for c in ["source_key", *props, *refs] if c != id_prop and c not in frame.columns]
    if missing:
        raise ValueError(f"{object_type}: mapper did not produce column(s) {missing}")
    payload = _payload_properties(object_type)
    base = frame.select(
        pl.col("source_key").cast(pl.String),
        *[pl.col(p).cast(pl.String) for p in payload],
        *[pl.col(r).cast(pl.String) for r in refs],
    )
    flags = base.with_columns(
        *[pl.col(p).str.contains("\x00", literal=True).fill_null(False).alias(f"_nul_{p}") for p in payload],
        *[
            (text(pl.col(p)).str.len_chars() > HUBSPOT_MAX_CHARS).fill_null(False).alias(f"_long_{p}")
            for p in payload
        ],
    )
    flag_cols = _flag_columns(object_type)
    raised = flags.select([pl.col(c).any() for c in flag_cols]).row(0, named=True) if flag_cols else {}
    repairs = {}
    for col, hit in raised.items():
        if hit:
            prop = col.removeprefix("_nul_").removeprefix("_long_")
            reason = (
                f"NUL bytes removed from {prop}"
                if col.startswith("_nul_")
                else f"{prop} truncated to {HUBSPOT_MAX_CHARS} characters"
            )
            repairs[col] = issues_where(flags, pl.col(col), REPAIRED, reason)
    records = base.select(
        "source_key",
        *[
            pl.col("source_key").alias(p)
            if p == id_prop
            else text(pl.col(p)).str.slice(0, HUBSPOT_MAX_CHARS).str.strip_chars().fill_null("").alias(p)
            for p in props
        ],
        *refs,
    )
    return records, repairs


def _check_keys(object_type: str, records: pl.DataFrame) -> None:
    if records.get_column("source_key").is_duplicated().any() or records.get_column("source_key").has_nulls():
        raise ValueError(f"{object_type}: mapper produced null or duplicate source keys")


def not_sent(object_type: str) -> Mapped:
    """Nothing of ``object_type``: the panel's ``commerce.objects`` does not sync it. No per-record issues (a
    million excluded orders would be a million rows of one reason); the writer says why, and removes nothing."""
    return Mapped(object_type, empty_records(object_type), empty_issues())
