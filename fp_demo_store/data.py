"""How the demo database is drawn: sizes, reference data and the table builder (vectorized, one Generator).

``demo.py`` is the public face (``generate``, ``build``, ``mess_plan``); this module draws the tables as polars
frames with SQL column names. Every random draw comes from the builder's one seeded Generator, in a fixed
order, so a seed always yields the same tables. Timestamps are integer microseconds until a frame is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from fp_demo_store import pools

STALE_AFTER = timedelta(days=3)  # stale open carts were last touched longer ago than this before as_of
FRESH_WITHIN = timedelta(hours=12)  # fresh open carts were touched within this before as_of
US_PER_S = 1_000_000
DAY_S = 86_400

STORES = (  # StoreId, StoreCode, Name, Currency, PriceList, customer share, phone prefix
    (1, "EU", "FocusPoint Europe", "EUR", 1, 0.5, "+49"),
    (2, "US", "FocusPoint USA", "USD", 2, 0.3, "+1"),
    (3, "UK", "FocusPoint UK", "GBP", 3, 0.2, "+44"),
)
PRICE_FACTORS = {1: 1.0, 2: 1.08, 3: 0.86}  # price list -> factor on the EUR base price
ROLES = ((1, "Guest", True), (2, "Registered", True), (3, "Admins", True), (4, "Vendors", True),
         (5, "Wholesale", False), (6, "VIP", False))  # fmt: skip
GROUPS = ((100, "Retail", "C"), (101, "Wholesale", "C"), (102, "Distributors", "C"), (103, "Suppliers", "S"),
          (104, "Web Shop", "C"))  # fmt: skip
LINE_COUNT_WEIGHTS = (0.35, 0.25, 0.17, 0.11, 0.07, 0.05)  # 1..6 lines per cart or order
ORDER_CATEGORIES = (  # (order_status, shipment_status, payment_status, share); the first takes the remainder
    ("closed", "shipped", "paid", 0.50),
    ("canceled", "not_shipped", "unpaid", 0.05),
    ("open", "not_shipped", "unpaid", 0.12),
    ("open", "not_shipped", "paid", 0.08),  # prepaid web orders waiting for shipment
    ("open", "partially_shipped", "unpaid", 0.05),
    ("open", "partially_shipped", "partially_paid", 0.05),
    ("closed", "shipped", "partially_paid", 0.05),
    ("closed", "shipped", "unpaid", 0.10),
)


@dataclass(frozen=True)
class Sizes:
    """Every count the generator plans, derived from the number of web customers alone (never the seed)."""

    customers: int

    @property
    def partners(self) -> int:
        return max(5, self.customers // 10)

    @property
    def suppliers(self) -> int:  # also the number of leads: BPs the reader must skip
        return max(2, self.partners // 20)

    @property
    def mess(self) -> int:  # rows per kind of email mess
        return max(2, self.customers // 100)

    @property
    def per_script(self) -> int:
        return max(2, self.customers // 25)

    @property
    def linked(self) -> int:
        return max(2, self.partners // 2)

    @property
    def guests(self) -> int:
        return round(self.customers * 0.2)

    @property
    def disabled(self) -> int:
        return max(1, self.customers // 50)

    @property
    def items(self) -> int:
        return max(50, self.customers // 20)

    @property
    def combination_items(self) -> int:
        return round(self.items * 0.4)

    @property
    def sap_only_items(self) -> int:
        return max(2, self.items // 25)

    @property
    def carts(self) -> int:
        return self.customers

    @property
    def ordered_carts(self) -> int:
        return round(self.carts * 0.6)

    @property
    def fresh_open_carts(self) -> int:
        return round((self.carts - self.ordered_carts) * 0.25)

    @property
    def orders(self) -> int:
        return round(self.customers * 1.5)

    def contacts_per_partner(self) -> np.ndarray:
        """How many partners have 1, 2, 3, 4 contact persons (exact, 40/30/20/10 %)."""
        shares = np.array([0.4, 0.3, 0.2, 0.1])
        counts = np.floor(shares * self.partners).astype(np.int64)
        counts[0] += self.partners - counts.sum()
        return counts

    def category_counts(self) -> np.ndarray:
        counts = np.array([math.floor(c[3] * self.orders) for c in ORDER_CATEGORIES], dtype=np.int64)
        counts[0] += self.orders - counts.sum()
        return counts



# --- small vector helpers -----------------------------------------------------------------------------------


def _pick(pool: tuple | list, idx: np.ndarray) -> np.ndarray:
    """``pool[idx]`` as an object array (fast gather of Python strings)."""
    return np.array(pool, dtype=object)[idx]


def _str(values: np.ndarray | list) -> pl.Series:
    """A String series from an object array that may hold None."""
    return pl.Series(values.tolist() if isinstance(values, np.ndarray) else values, dtype=pl.String)


def _ts(us: np.ndarray) -> pl.Series:
    """Microseconds since the epoch -> a polars Datetime series."""
    return pl.Series(us.astype(np.int64)).cast(pl.Datetime("us"))


def _null_if(values: np.ndarray, mask: np.ndarray) -> pl.Series:
    return pl.Series(values).set(pl.Series(mask), None) if mask.any() else pl.Series(values)


def _sap_marker(us: np.ndarray) -> tuple[pl.Series, pl.Series]:
    """A timestamp split the SAP way: UpdateDate (the day) and UpdateTS (HHMMSS)."""
    seconds = us // US_PER_S
    day = seconds - seconds % DAY_S
    sod = seconds % DAY_S
    hhmmss = (sod // 3600) * 10_000 + (sod % 3600) // 60 * 100 + sod % 60
    return _ts(day * US_PER_S), pl.Series(hhmmss.astype(np.int64))


def _us(delta: timedelta) -> int:
    return int(delta.total_seconds()) * US_PER_S


def _day(us: np.ndarray) -> np.ndarray:
    return us - us % (DAY_S * US_PER_S)


def _ragged_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of ``counts`` rows: each row's group and its 0-based position inside the group."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(int(counts.sum())) - starts[owner]


def _exact_choice(rng: np.random.Generator, size: int, counts: np.ndarray) -> np.ndarray:
    """A shuffled vector holding value i exactly counts[i] times."""
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))[:size]


class TableBuilder:
    """Draws every table in a fixed order from one Generator."""

    def __init__(self, customers: int, seed: int, as_of: datetime) -> None:
        self.s = Sizes(customers)
        self.rng = np.random.default_rng(seed)
        self.now = int(np.datetime64(as_of, "us").astype(np.int64))
        self.tables: dict[str, pl.DataFrame] = {}

    def _between(self, lo: np.ndarray | int, hi: np.ndarray | int, size: int) -> np.ndarray:
        """Uniform microsecond timestamps in [lo, hi], rounded to the second."""
        us = lo + (self.rng.random(size) * (np.asarray(hi) - np.asarray(lo))).astype(np.int64)
        return us - us % US_PER_S

    def build(self) -> dict[str, pl.DataFrame]:
        self._reference()
        self._partners()
        self._customers()
        self._addresses()
        self._items()
        self._carts()
        self._orders()
        return self.tables

    # -- reference data ------------------------------------------------------------------------------------

    def _reference(self) -> None:
        self.tables["FP_STORE"] = pl.DataFrame(
            [r[:5] for r in STORES], schema=["StoreId", "StoreCode", "Name", "Currency", "PriceList"], orient="row"
        )
        self.tables["FP_ROLE"] = pl.DataFrame(ROLES, schema=["RoleId", "Name", "IsSystem"], orient="row")
        self.tables["OCRG"] = pl.DataFrame(GROUPS, schema=["GroupCode", "GroupName", "GroupType"], orient="row")

    # -- business partners, their addresses and contact persons --------------------------------------------

    def _partners(self) -> None:
        s, rng = self.s, self.rng
        n = s.partners
        sup = s.suppliers
        codes = [f"C{i:07d}" for i in range(1, n + 1)]
        kind_codes = [f"V{i:07d}" for i in range(1, sup + 1)] + [f"L{i:07d}" for i in range(1, sup + 1)]
        web_codes = [f"WEB-{st[1]}" for st in STORES]
        stems = rng.integers(0, len(pools.COMPANY_STEMS), n)
        suffix = rng.integers(0, len(pools.COMPANY_SUFFIXES), n)
        names = np.array(
            [f"{pools.COMPANY_STEMS[a]} {pools.COMPANY_SUFFIXES[b]}" for a, b in zip(stems, suffix, strict=True)],
            dtype=object,
        )
        order = rng.permutation(n)
        n_unicode = min(n // 2, max(len(pools.UNICODE_COMPANIES), n // 10))
        uni = order[:n_unicode]
        names[uni] = _pick(pools.UNICODE_COMPANIES, np.arange(n_unicode) % len(pools.UNICODE_COMPANIES))
        private = order[n_unicode : n_unicode + max(1, n // 10)]
        people = [f"{a} {b}" for a, b in pools.PERSON_FOR_PRIVATE_BP]
        names[private] = _pick(people, np.arange(len(private)) % len(people))
        cmp_private = np.full(n, "C", dtype=object)
        cmp_private[private] = "I"
        frozen = np.zeros(n, dtype=bool)
        frozen[rng.permutation(n)[: max(1, n // 50)]] = True
        # the partner's domain, shared by its contact persons' emails
        domains = np.array([f"{pools.COMPANY_STEMS[a].lower()}{i + 1}.example" for i, a in enumerate(stems)], dtype=object)
        emails = np.array([f"info@{d}" for d in domains], dtype=object)
        emails[rng.permutation(n)[: max(1, n // 20)]] = None
        has_wh2 = rng.random(n) < 0.3
        ship_def = np.where(has_wh2 & (rng.random(n) < 0.5), "Warehouse 2", "Main")
        created = self._between(self.now - 5 * 365 * DAY_S * US_PER_S, self.now - 30 * DAY_S * US_PER_S, n)
        updated = self._between(created, self.now, n)
        extra = len(kind_codes) + len(web_codes)
        all_codes = codes + kind_codes + web_codes
        upd_day, upd_ts = _sap_marker(np.concatenate([updated, np.full(extra, self.now - 400 * DAY_S * US_PER_S)]))
        create_all = np.concatenate([created, np.full(extra, self.now - 2000 * DAY_S * US_PER_S)])
        phone = pl.Series([f"+49 30 {v:07d}" for v in rng.integers(0, 10**7, n)])
        self.tables["OCRD"] = pl.DataFrame(
            {
                "CardCode": all_codes,
                "CardName": list(names) + [f"Supplier {c}" for c in kind_codes[:sup]]
                + [f"Lead {c}" for c in kind_codes[sup:]] + [f"Web Shop {st[1]}" for st in STORES],
                "CardType": ["C"] * n + ["S"] * sup + ["L"] * sup + ["C"] * len(web_codes),
                "CmpPrivate": list(cmp_private) + ["C"] * extra,
                "GroupCode": np.concatenate([rng.choice([100, 101, 102], n, p=[0.3, 0.5, 0.2]),
                                             np.full(sup, 103), np.full(sup, 100), np.full(len(web_codes), 104)]),
                "E_Mail": list(emails) + [None] * extra,
                "Phone1": pl.concat([phone, _str([None] * extra)]),
                "validFor": ["Y"] * len(all_codes),
                "frozenFor": list(np.where(frozen, "Y", "N")) + ["N"] * extra,
                "BillToDef": ["Main"] * len(all_codes),
                "ShipToDef": list(ship_def) + ["Main"] * extra,
                "CreateDate": _ts(_day(create_all)),
                "UpdateDate": upd_day,
                "UpdateTS": upd_ts,
            }
        )  # fmt: skip
        self.partner_codes = np.array(codes, dtype=object)
        self.partner_domains = domains
        self.web_partner = {st[0]: code for st, code in zip(STORES, web_codes, strict=True)}
        # CRD1: Main bill-to + Main ship-to for everyone, a second ship-to for ~30 %
        owner = np.concatenate([np.arange(n), np.arange(n), np.flatnonzero(has_wh2)])
        kind = np.array(["B"] * n + ["S"] * n + ["S"] * int(has_wh2.sum()), dtype=object)
        name = np.array(["Main"] * (2 * n) + ["Warehouse 2"] * int(has_wh2.sum()), dtype=object)
        place = self._places(np.zeros(len(owner), dtype=np.int64) - 1)
        crd1 = pl.DataFrame(
            {"CardCode": self.partner_codes[owner], "Address": name, "AdresType": kind, **place.crd1()}
        ).sort("CardCode", "AdresType", "Address")
        self.tables["CRD1"] = crd1
        self._contact_persons()

    def _contact_persons(self) -> None:
        s, rng = self.s, self.rng
        per = _exact_choice(rng, s.partners, s.contacts_per_partner()) + 1
        owner, pos = _ragged_index(per)
        total = len(owner)
        first = _pick(pools.PLAIN_FIRST, rng.integers(0, len(pools.PLAIN_FIRST), total))
        last = _pick(pools.PLAIN_LAST, rng.integers(0, len(pools.PLAIN_LAST), total))
        domains = self.partner_domains
        email_expr = pl.format(
            "{}.{}{}@{}",
            pl.Series(first).str.to_lowercase(),
            pl.Series(last).str.to_lowercase(),
            pl.Series(np.arange(1, total + 1)),
            pl.Series(domains[owner]),
        )
        emails = pl.select(email_expr).to_series()
        later = np.flatnonzero(pos > 0)  # first contacts keep their email: web logins copy it
        no_mail = rng.permutation(later)[: max(1, total // 20)] if len(later) else np.array([], dtype=np.int64)
        mask = np.zeros(total, dtype=bool)
        mask[no_mail] = True
        inactive = rng.random(total) < 0.05
        self.tables["OCPR"] = pl.DataFrame(
            {
                "CntctCode": np.arange(1, total + 1),
                "CardCode": self.partner_codes[owner],
                "Name": pl.Series(first) + " " + pl.Series(last),
                "FirstName": first,
                "LastName": last,
                "E_MailL": emails.set(pl.Series(mask), None) if mask.any() else emails,
                "Tel1": [f"+49 40 {v:07d}" for v in rng.integers(0, 10**7, total)],
                "Active": np.where(inactive, "N", "Y"),
            }
        )
        firsts = np.flatnonzero(pos == 0)  # one per partner, in partner order
        self.first_contact = (first[firsts], last[firsts], emails.gather(firsts).to_numpy())

    # -- web customers ------------------------------------------------------------------------------------

    def _customers(self) -> None:
        s, rng = self.s, self.rng
        n = s.customers
        ids = np.arange(1, n + 1)
        store = rng.choice([st[0] for st in STORES], n, p=[st[5] for st in STORES])
        first_i = rng.integers(0, len(pools.PLAIN_FIRST), n)
        last_i = rng.integers(0, len(pools.PLAIN_LAST), n)
        first = _pick(pools.PLAIN_FIRST, first_i)
        last = _pick(pools.PLAIN_LAST, last_i)
        first_ascii, last_ascii = first.copy(), last.copy()
        perm = rng.permutation(n)
        bounds = np.cumsum([0, s.linked, s.mess, s.mess, s.mess, s.mess])
        linked, missing, invalid, dup_variant, dup_source = (perm[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
        rest = perm[s.linked + 4 * s.mess :]
        # names in other scripts, disjoint from the email mess so each kind stays countable
        script_rows = rng.permutation(rest)
        for k, pool in enumerate(pools.SCRIPT_POOLS.values()):
            rows = script_rows[k * s.per_script : (k + 1) * s.per_script]
            pick = rng.integers(0, len(pool), len(rows))
            for col, arr in enumerate((first, last, first_ascii, last_ascii)):
                arr[rows] = _pick([p[col] for p in pool], pick)
        # B2B web logins: the partner's first contact person, same name and email
        partner_of = rng.permutation(s.partners)[: s.linked]
        card_code = np.full(n, None, dtype=object)
        card_code[linked] = self.partner_codes[partner_of]
        cf, cl, ce = self.first_contact
        first[linked], last[linked] = cf[partner_of], cl[partner_of]
        first_ascii[linked], last_ascii[linked] = cf[partner_of], cl[partner_of]
        email = pl.select(
            pl.format(
                "{}.{}{}@{}",
                pl.Series(first_ascii).str.to_lowercase(),
                pl.Series(last_ascii).str.to_lowercase(),
                pl.Series(ids),
                pl.Series(_pick(pools.EMAIL_DOMAINS, rng.integers(0, len(pools.EMAIL_DOMAINS), n))),
            )
        ).to_series().to_numpy().astype(object)  # fmt: skip
        email[linked] = ce[partner_of]
        email[missing] = [None if i % 2 == 0 else "" for i in range(len(missing))]
        email[invalid] = [
            pools.INVALID_EMAILS[i % len(pools.INVALID_EMAILS)].format(local=f"{first_ascii[r].lower()}{r + 1}")
            for i, r in enumerate(invalid)
        ]
        variants = (str.upper, lambda e: f" {e}", lambda e: f"{e} ", lambda e: e[:1].upper() + e[1:],
                    lambda e: f"  {e.upper()} ")  # fmt: skip
        email[dup_variant] = [variants[i % len(variants)](email[src]) for i, src in enumerate(dup_source)]
        first[dup_variant], last[dup_variant] = first[dup_source], last[dup_source]
        # guests, disabled logins and roles come from the remaining rows
        shuffled = rng.permutation(rest)
        guests = shuffled[: s.guests]
        registered = shuffled[s.guests :]
        is_guest = np.zeros(n, dtype=bool)
        is_guest[guests] = True
        disabled = np.zeros(n, dtype=bool)
        disabled[registered[: s.disabled]] = True
        admins = registered[s.disabled : s.disabled + 2]
        vendors = registered[s.disabled + 2 : s.disabled + 2 + max(1, n // 200)]
        vip = registered[-max(1, n // 20) :]
        created = self._between(self.now - 3 * 365 * DAY_S * US_PER_S, self.now - 7 * DAY_S * US_PER_S, n)
        updated = self._between(created, self.now, n)
        phone_prefix = _pick([st[6] for st in STORES], store - 1)
        phone = pl.Series(phone_prefix) + " " + pl.Series(rng.integers(10**6, 10**8, n)).cast(pl.String)
        self.tables["FP_CUSTOMER"] = pl.DataFrame(
            {
                "CustomerId": ids,
                "StoreId": store,
                "CardCode": _str(card_code),
                "Email": _str(email),
                "FirstName": _str(first),
                "LastName": _str(last),
                "Phone": phone.set(pl.Series(rng.random(n) < 0.1), None),
                "IsGuest": is_guest,
                "Disabled": disabled,
                "CreatedAt": _ts(created),
                "UpdatedAt": _ts(updated),
            }
        )
        all_registered = np.concatenate([linked, missing, invalid, dup_variant, dup_source, registered])
        role_rows = [
            (all_registered, 2), (admins, 3), (vendors, 4), (linked, 5), (vip, 6)
        ]  # fmt: skip
        cust = np.concatenate([rows for rows, _ in role_rows]) + 1
        role = np.concatenate([np.full(len(rows), r) for rows, r in role_rows])
        order = np.lexsort((role, cust))
        self.tables["FP_CUSTOMER_ROLE"] = pl.DataFrame({"CustomerId": cust[order], "RoleId": role[order]})
        self.cust_store, self.cust_created, self.cust_updated = store, created, updated
        self.cust_email, self.cust_guest, self.cust_card = email, is_guest, card_code

    def _places(self, store: np.ndarray) -> _Places:
        return _Places.draw(self.rng, store)

    def _addresses(self) -> None:
        s, rng = self.s, self.rng
        extra_ship = rng.choice([0, 1, 2], s.customers, p=[0.5, 0.4, 0.1])
        per = 1 + extra_ship
        owner, pos = _ragged_index(per)
        addr_type = np.where(pos == 0, "billing", "shipping")
        is_default = (pos == 0) | (pos == 1)  # the billing and the first shipping address
        place = self._places(self.cust_store[owner])
        self.tables["FP_ADDRESS"] = pl.DataFrame(
            {
                "AddressId": np.arange(1, len(owner) + 1),
                "CustomerId": owner + 1,
                "AddressType": addr_type,
                "IsDefault": is_default,
                **place.web(),
                "UpdatedAt": _ts(self.cust_updated[owner]),
            }
        )

    # -- items, prices, stores, combinations ---------------------------------------------------------------

    def _items(self) -> None:
        s, rng = self.s, self.rng
        n = s.items
        codes = np.array([f"A{i:06d}" for i in range(1, n + 1)], dtype=object)
        adj = rng.integers(0, len(pools.PRODUCT_ADJECTIVES), n)
        noun = rng.integers(0, len(pools.PRODUCT_NOUNS), n)
        names = np.array([f"{pools.PRODUCT_ADJECTIVES[a]} {pools.PRODUCT_NOUNS[b]}" for a, b in zip(adj, noun, strict=True)],
                         dtype=object)  # fmt: skip
        base = np.round(rng.uniform(5, 250, n), 2)
        perm = rng.permutation(n)
        combo_items = np.sort(perm[: s.combination_items])
        sap_only = perm[s.combination_items : s.combination_items + s.sap_only_items]
        inactive = np.zeros(n, dtype=bool)
        inactive[rng.permutation(n)[: max(1, n // 50)]] = True
        published = rng.random((n, len(STORES))) < np.array([0.8, 0.6, 0.4])
        published[~published.any(axis=1), 0] = True
        published[sap_only] = False
        created = self._between(self.now - 4 * 365 * DAY_S * US_PER_S, self.now - 365 * DAY_S * US_PER_S, n)
        updated = self._between(created, self.now, n)
        upd_day, upd_ts = _sap_marker(updated)
        barcode = pl.Series([f"40{v:011d}" for v in rng.integers(0, 10**11, n)])
        self.tables["OITM"] = pl.DataFrame(
            {
                "ItemCode": codes,
                "ItemName": names,
                "ItmsGrpCod": 100 + noun % 6,
                "UserText": pl.Series(names) + " from the FocusPoint catalogue.",
                "validFor": np.where(inactive, "N", "Y"),
                "frozenFor": ["N"] * n,
                "SalUnitMsr": ["pcs"] * n,
                "CodeBars": barcode.set(pl.Series(rng.random(n) < 0.2), None),
                "CreateDate": _ts(_day(created)),
                "UpdateDate": upd_day,
                "UpdateTS": upd_ts,
            }
        )
        prices = np.stack([np.round(base * PRICE_FACTORS[st[4]], 2) for st in STORES], axis=1)  # (n, stores)
        self.tables["ITM1"] = pl.DataFrame(
            {
                "ItemCode": np.repeat(codes, len(STORES)),
                "PriceList": np.tile([st[4] for st in STORES], n),
                "Price": prices.reshape(-1),
                "Currency": np.tile([st[3] for st in STORES], n),
            }
        )
        item_i, store_i = np.nonzero(published)
        self.tables["FP_ITEM_STORE"] = pl.DataFrame(
            {"ItemCode": codes[item_i], "StoreId": np.array([st[0] for st in STORES])[store_i]}
        )
        self.item_codes, self.item_names, self.item_prices, self.published = codes, names, prices, published
        self.item_active = ~inactive
        self._combinations(combo_items, updated)

    def _combinations(self, items: np.ndarray, item_updated: np.ndarray) -> None:
        """Per item with combinations: Color x Size (60 %), Color only (25 %) or Size only (15 %)."""
        rng = self.rng
        rows: list[tuple[int, str, str, float, int]] = []
        count = np.zeros(len(self.item_codes), dtype=np.int64)
        start = np.zeros(len(self.item_codes), dtype=np.int64)
        for item in items:
            kind = rng.choice(3, p=[0.6, 0.25, 0.15])
            colors = sorted(rng.choice(len(pools.COLORS), rng.integers(2, 4), replace=False)) if kind < 2 else [None]
            sizes = sorted(rng.choice(len(pools.SIZES), rng.integers(2, 5), replace=False)) if kind != 1 else [None]
            start[item] = len(rows)
            for c in colors:
                for z in sizes:
                    parts = ([f"Color: {pools.COLORS[c]}"] if c is not None else []) + (
                        [f"Size: {pools.SIZES[z]}"] if z is not None else []
                    )
                    sku = "-".join([self.item_codes[item]] + ([pools.COLORS[c][:3].upper()] if c is not None else [])
                                   + ([pools.SIZES[z]] if z is not None else []))  # fmt: skip
                    delta = {"L": 2.0, "XL": 5.0}.get(pools.SIZES[z], 0.0) if z is not None else 0.0
                    rows.append((item, sku, ", ".join(parts), delta, int(item_updated[item])))
            count[item] = len(rows) - start[item]
        item_idx = np.array([r[0] for r in rows], dtype=np.int64)
        self.tables["FP_ITEM_COMBINATION"] = pl.DataFrame(
            {
                "CombinationId": np.arange(1, len(rows) + 1),
                "ItemCode": self.item_codes[item_idx],
                "Sku": [r[1] for r in rows],
                "Attributes": [r[2] for r in rows],
                "PriceDelta": [r[3] for r in rows],
                "UpdatedAt": _ts(np.array([r[4] for r in rows], dtype=np.int64)),
            }
        )
        self.combo_start, self.combo_count = start, count
        self.combo_delta = np.array([r[3] for r in rows])

    # -- carts and orders ----------------------------------------------------------------------------------

    def _lines(self, n_docs: int, store: np.ndarray, qty_max: int) -> dict[str, np.ndarray]:
        """Random lines for documents sold in ``store`` (0 = SAP, any active item at price list 1)."""
        rng = self.rng
        per = rng.choice(np.arange(1, 7), n_docs, p=LINE_COUNT_WEIGHTS)
        doc, pos = _ragged_index(per)
        line_store = store[doc]
        item = np.empty(len(doc), dtype=np.int64)
        for st_idx, st in enumerate([0] + [st[0] for st in STORES]):
            mask = line_store == st
            offer = np.flatnonzero(self.item_active & (self.published[:, st_idx - 1] if st else True))
            item[mask] = offer[rng.integers(0, len(offer), int(mask.sum()))]
        with_combo = (self.combo_count[item] > 0) & (line_store > 0)
        combo = np.where(
            with_combo,
            self.combo_start[item] + (rng.random(len(item)) * np.maximum(self.combo_count[item], 1)).astype(np.int64),
            -1,
        )
        qty = rng.integers(1, qty_max + 1, len(item)).astype(np.float64)
        list_col = np.maximum(line_store - 1, 0)
        price = self.item_prices[item, list_col] + np.where(combo >= 0, self.combo_delta[np.maximum(combo, 0)], 0.0)
        return {"doc": doc, "pos": pos, "item": item, "combo": combo, "qty": qty, "price": np.round(price, 2),
                "per": per}  # fmt: skip

    def _carts(self) -> None:
        s, rng = self.s, self.rng
        n = s.carts
        guests = np.flatnonzero(self.cust_guest)
        registered = np.flatnonzero(~self.cust_guest)
        customer = np.concatenate([guests, registered[rng.integers(0, len(registered), n - len(guests))]])
        customer = rng.permutation(customer)
        status = _exact_choice(rng, n, np.array([s.ordered_carts, s.fresh_open_carts, n - s.ordered_carts - s.fresh_open_carts]))
        cust_created = self.cust_created[customer]
        hour = 3600 * US_PER_S
        stale_end = self.now - _us(STALE_AFTER) - 3 * DAY_S * US_PER_S - US_PER_S  # + up to 3 days of edits
        created = np.where(
            status == 1,
            self._between(self.now - _us(FRESH_WITHIN), self.now - hour, n),
            self._between(cust_created, np.maximum(stale_end, cust_created), n),
        )
        updated = np.where(
            status == 1,
            self._between(created, self.now, n),
            created + self._between(2 * 60 * US_PER_S, np.where(status == 0, 2 * hour, 3 * DAY_S * US_PER_S), n),
        )
        # cart ids follow creation time, as an autoincrement would
        order = np.argsort(created, kind="stable")
        customer, status, created, updated = customer[order], status[order], created[order], updated[order]
        store = self.cust_store[customer]
        lines = self._lines(n, store, 5)
        self.cart = {"customer": customer, "status": status, "created": created, "updated": updated,
                     "store": store, "lines": lines}  # fmt: skip

    def _orders(self) -> None:
        """Orders: one per ordered cart (same lines) plus SAP-only orders; DocEntry follows placement time."""
        s, rng, cart = self.s, self.rng, self.cart
        ordered = np.flatnonzero(cart["status"] == 0)
        n_web, n_sap = len(ordered), s.orders - len(ordered)
        sap_lines = self._lines(n_sap, np.zeros(n_sap, dtype=np.int64), 20)
        sap_card = self.partner_codes[rng.integers(0, s.partners, n_sap)]
        sap_time = self._between(self.now - 730 * DAY_S * US_PER_S, self.now - DAY_S * US_PER_S, n_sap)
        # web orders are booked to the customer's partner when the login belongs to one, else to the store's
        # one-time-customer partner (WEB-EU …), as SAP shops do
        linked = self.cust_card[cart["customer"][ordered]]
        fallback = np.array([self.web_partner[st[0]] for st in STORES], dtype=object)[cart["store"][ordered] - 1]
        unlinked = _str(linked).is_null().to_numpy()
        web_card = np.where(unlinked, fallback, linked)
        # "u" = unsorted order index: web orders in cart order, then SAP-only orders
        placed_u = np.concatenate([cart["updated"][ordered], sap_time])
        by_time = np.argsort(placed_u, kind="stable")
        rank = np.empty(len(placed_u), dtype=np.int64)
        rank[by_time] = np.arange(len(placed_u))
        cl = cart["lines"]
        web_pos = np.full(s.carts, -1)
        web_pos[ordered] = np.arange(n_web)
        keep = web_pos[cl["doc"]] >= 0
        lines = {k: np.concatenate([cl[k][keep], sap_lines[k]]) for k in ("pos", "item", "combo", "qty", "price")}
        lines["doc"] = rank[np.concatenate([web_pos[cl["doc"][keep]], sap_lines["doc"] + n_web])]
        line_order = np.lexsort((lines["pos"], lines["doc"]))
        lines = {k: v[line_order] for k, v in lines.items()}
        per = np.concatenate([cl["per"][ordered], sap_lines["per"]])[by_time]
        cart_of = np.concatenate([ordered, np.full(n_sap, -1)])[by_time]
        store = np.concatenate([cart["store"][ordered], np.zeros(n_sap, dtype=np.int64)])[by_time]
        card = np.concatenate([web_card, sap_card])[by_time]
        self.tables["FP_CART"], self.tables["FP_CART_LINE"] = self._cart_tables(cart_of)
        self._documents(lines, per, placed_u[by_time], cart_of, store, card)

    def _cart_tables(self, cart_of_order: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame]:
        cart = self.cart
        n = len(cart["customer"])
        doc_entry = np.full(n, -1)
        web = np.flatnonzero(cart_of_order >= 0)
        doc_entry[cart_of_order[web]] = web + 1
        cl = cart["lines"]
        cust = cart["customer"]
        carts = pl.DataFrame(
            {
                "CartId": np.arange(1, n + 1),
                "StoreId": cart["store"],
                "CustomerId": cust + 1,
                "Email": _str(self.cust_email[cust]),
                "Status": np.where(cart["status"] == 0, "ordered", "open"),
                "OrderDocEntry": _null_if(doc_entry, doc_entry < 0),
                "CreatedAt": _ts(cart["created"]),
                "UpdatedAt": _ts(cart["updated"]),
            }
        )
        cart_lines = pl.DataFrame(
            {
                "CartId": cl["doc"] + 1,
                "LineNum": cl["pos"],
                "ItemCode": self.item_codes[cl["item"]],
                "CombinationId": _null_if(cl["combo"] + 1, cl["combo"] < 0),
                "Quantity": cl["qty"],
                "Price": cl["price"],
            }
        )
        return carts, cart_lines

    def _categories(self, lines: dict[str, np.ndarray], per: np.ndarray) -> np.ndarray:
        """Order category per order (index into ORDER_CATEGORIES), exact counts; partial shipments only where
        an order can be split (two lines or more, or a last line of quantity 2 or more)."""
        rng, counts = self.rng, self.s.category_counts()
        n = len(per)
        last = np.flatnonzero(lines["pos"] == per[lines["doc"]] - 1)
        splittable = (per >= 2) | (lines["qty"][last] >= 2)
        partial_cats = [i for i, c in enumerate(ORDER_CATEGORIES) if c[1] == "partially_shipped"]
        cat = np.full(n, -1)
        candidates = rng.permutation(np.flatnonzero(splittable))
        taken = 0
        for c in partial_cats:
            cat[candidates[taken : taken + counts[c]]] = c
            taken += counts[c]
        others = np.array([c for c in range(len(ORDER_CATEGORIES)) if c not in partial_cats])
        free = np.flatnonzero(cat < 0)
        cat[free] = others[_exact_choice(rng, len(free), counts[others])]
        return cat

    def _documents(self, lines: dict[str, np.ndarray], per: np.ndarray, placed: np.ndarray, cart_of: np.ndarray,
                   web_store: np.ndarray, card: np.ndarray) -> None:  # fmt: skip
        n = len(per)
        cat = self._categories(lines, per)
        order_status = np.array([c[0] for c in ORDER_CATEGORIES])[cat]
        shipment = np.array([c[1] for c in ORDER_CATEGORIES])[cat]
        payment = np.array([c[2] for c in ORDER_CATEGORIES])[cat]
        doc = lines["doc"]
        line_total = np.round(lines["qty"] * lines["price"], 2)
        total = np.round(np.bincount(doc, weights=line_total, minlength=n), 2)
        currency_of_store = np.array(["EUR"] + [st[3] for st in STORES], dtype=object)
        currency = currency_of_store[web_store]
        entry = np.arange(1, n + 1)
        names = {c: nm for c, nm in zip(self.tables["OCRD"]["CardCode"], self.tables["OCRD"]["CardName"], strict=True)}
        card_name = np.array([names[c] for c in card], dtype=object)
        shipped_at = np.minimum(placed + self._between(DAY_S * US_PER_S, 7 * DAY_S * US_PER_S, n), self.now)
        invoiced_at = np.where(shipment == "not_shipped", np.minimum(placed + 600 * US_PER_S, self.now), shipped_at)
        has_delivery = shipment != "not_shipped"
        has_invoice = payment != "unpaid"
        has_invoice |= (order_status == "closed") & (payment == "unpaid")
        last_change = np.maximum(placed, np.where(has_delivery, shipped_at, placed))
        last_change = np.maximum(last_change, np.where(has_invoice, invoiced_at, placed))
        closed = order_status != "open"
        common = {"CardCode": card, "CardName": card_name}
        self.tables["ORDR"] = self._header(entry, 100_000, placed, total, currency, np.where(closed, "C", "O"),
                                           order_status == "canceled", last_change, common).with_columns(
            U_FP_CartId=_null_if(cart_of + 1, cart_of < 0),
            U_FP_StoreId=_null_if(web_store, web_store == 0),
        )  # fmt: skip
        self.tables["RDR1"] = self._doc_lines(
            doc + 1, lines, lines["qty"], np.where(closed[doc], "C", "O")
        ).with_columns(U_FP_CombinationId=_null_if(lines["combo"] + 1, lines["combo"] < 0))
        # deliveries: whole order, or all but half of the last line for partial shipments
        is_last = lines["pos"] == per[doc] - 1
        partial = shipment[doc] == "partially_shipped"
        delivered = np.where(partial & is_last, np.floor(lines["qty"] / 2), lines["qty"]) * has_delivery[doc]
        self._copies("ODLN", "DLN1", 200_000, np.flatnonzero(has_delivery), delivered, lines, shipped_at,
                     currency, common)  # fmt: skip
        # invoices: the whole order total, paid fully, partly or not at all; one line (the order's first)
        paid_share = np.where(payment == "paid", 1.0, np.where(payment == "partially_paid", self.rng.uniform(0.2, 0.8, n), 0.0))
        paid = np.clip(np.round(total * paid_share, 2), 0, total)
        paid = np.where((payment == "partially_paid") & (paid >= total), np.round(total / 2, 2), paid)
        first_line = (lines["pos"] == 0) & has_invoice[doc]
        self._copies("OINV", "INV1", 300_000, np.flatnonzero(has_invoice), np.where(first_line, lines["qty"], 0.0),
                     lines, invoiced_at, currency, common, doc_total=total, paid=paid)  # fmt: skip

    def _header(self, entry: np.ndarray, num_base: int, at: np.ndarray, total: np.ndarray, currency: np.ndarray,
                status: np.ndarray, canceled: np.ndarray, changed: np.ndarray, extra: dict) -> pl.DataFrame:  # fmt: skip
        upd_day, upd_ts = _sap_marker(changed)
        return pl.DataFrame(
            {
                "DocEntry": entry,
                "DocNum": entry + num_base,
                **{k: _str(v) for k, v in extra.items()},
                "DocDate": _ts(_day(at)),
                "DocDueDate": _ts(_day(at) + 14 * DAY_S * US_PER_S),
                "DocTotal": total,
                "DocCur": _str(currency),
                "DocStatus": status,
                "CANCELED": np.where(canceled, "Y", "N"),
                "CreateDate": _ts(_day(at)),
                "UpdateDate": upd_day,
                "UpdateTS": upd_ts,
            }
        )

    def _doc_lines(self, entry: np.ndarray, lines: dict[str, np.ndarray], qty: np.ndarray, status: np.ndarray
                   ) -> pl.DataFrame:  # fmt: skip
        return pl.DataFrame(
            {
                "DocEntry": entry,
                "LineNum": lines["pos"],
                "ItemCode": self.item_codes[lines["item"]],
                "Dscription": self.item_names[lines["item"]],
                "Quantity": qty,
                "Price": lines["price"],
                "LineTotal": np.round(qty * lines["price"], 2),
                "LineStatus": status,
            }
        )

    def _copies(self, head: str, body: str, num_base: int, orders: np.ndarray, qty: np.ndarray,
                lines: dict[str, np.ndarray], at: np.ndarray, currency: np.ndarray, common: dict,
                doc_total: np.ndarray | None = None, paid: np.ndarray | None = None) -> None:  # fmt: skip
        """Target documents copied from orders (deliveries, invoices): one per order in ``orders``, with the
        order lines of positive ``qty``, linked back by BaseType 17 / BaseEntry / BaseLine."""
        entry_of_order = np.full(len(at), -1)
        entry_of_order[orders] = np.arange(1, len(orders) + 1)
        keep = qty > 0
        sub = {k: v[keep] for k, v in lines.items()}
        body_entry = entry_of_order[sub["doc"]]
        frame = self._doc_lines(body_entry, sub, qty[keep], np.full(int(keep.sum()), "C")).with_columns(
            BaseType=pl.lit(17, dtype=pl.Int64),
            BaseEntry=pl.Series(sub["doc"] + 1),
            BaseLine=pl.Series(sub["pos"]),
        )
        self.tables[body] = frame
        if doc_total is None:
            doc_total = np.round(np.bincount(sub["doc"], weights=frame["LineTotal"].to_numpy(), minlength=len(at)), 2)
        header = self._header(
            np.arange(1, len(orders) + 1), num_base, at[orders], doc_total[orders], currency[orders],
            np.full(len(orders), "C" if paid is None else "O"), np.zeros(len(orders), dtype=bool), at[orders],
            {k: v[orders] for k, v in common.items()},
        )  # fmt: skip
        if paid is not None:
            p = paid[orders]
            header = header.with_columns(
                PaidToDate=pl.Series(p), DocStatus=pl.Series(np.where(p >= doc_total[orders], "C", "O"))
            )
        self.tables[head] = header


@dataclass
class _Places:
    """Random addresses for rows of a given store (-1: any country, used for business partners)."""

    country: np.ndarray
    state: np.ndarray
    city: np.ndarray
    street: pl.Series
    street2: pl.Series
    zip: pl.Series

    @classmethod
    def draw(cls, rng: np.random.Generator, store: np.ndarray) -> _Places:
        places = [(st[0], p) for st in STORES for p in pools.PLACES[st[1]]]
        n = len(store)
        choice = np.empty(n, dtype=np.int64)
        for code in [-1] + [st[0] for st in STORES]:
            mask = store == code
            options = np.array([i for i, (sid, _) in enumerate(places) if code in (-1, sid)])
            choice[mask] = options[rng.integers(0, len(options), int(mask.sum()))]
        country = _pick([p[0] for _, p in places], choice)
        pick = rng.integers(0, 1 << 30, n)
        state = cls._from_pool([p[1] for _, p in places], choice, pick)
        city = cls._from_pool([p[2] for _, p in places], choice, pick)
        street = pl.Series(_pick(pools.STREETS, rng.integers(0, len(pools.STREETS), n))) + " " + pl.Series(
            rng.integers(1, 200, n)
        ).cast(pl.String)
        apt = rng.integers(1, 60, n)
        street2 = ("Apt " + pl.Series(apt).cast(pl.String)).set(pl.Series(rng.random(n) >= 0.2), None)
        zip_code = pl.Series(rng.integers(1000, 99999, n)).cast(pl.String).str.zfill(5)
        return cls(country, state, city, street, street2, zip_code)

    @staticmethod
    def _from_pool(per_place: list[tuple[str, ...]], choice: np.ndarray, pick: np.ndarray) -> np.ndarray:
        """One value per row from its place's pool (empty strings become NULL)."""
        width = max(len(p) for p in per_place)
        table = np.array([[v or None for v in p] + [None] * (width - len(p)) for p in per_place], dtype=object)
        sizes = np.array([len(p) for p in per_place])
        return table[choice, pick % sizes[choice]]

    def web(self) -> dict[str, object]:
        return {"Street": self.street, "Street2": self.street2, "City": self.city, "Zip": self.zip,
                "State": _str(self.state), "Country": self.country}  # fmt: skip

    def crd1(self) -> dict[str, object]:
        return {"Street": self.street, "Block": self.street2, "City": self.city, "ZipCode": self.zip,
                "County": pl.Series([None] * len(self.city), dtype=pl.String),
                "State": _str(self.state), "Country": self.country}  # fmt: skip
