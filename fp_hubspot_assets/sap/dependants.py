"""Which rows an incremental read of customers, addresses and items covers: the changed ones plus the rows
their mapping needs beside them (docs/automation.md → Incremental and full runs).

Every query here selects keys only, through an index (change markers, ``CustomerId``, ``CardCode``, the
normalised e-mail); the rows themselves are then read by key (``SapReader.read(entity, Keys)``). The orders and
carts of the run are the keys their reads covered (``SapReader.deal_keys``: resolved from the marker and link
indexes, no re-evaluation of a change condition).

Customers (and addresses, read for the same keys):
- web customers, business partners and their contact persons whose change markers moved; web customers and
  partners whose addresses changed (SAP addresses move their partner's marker);
- the web customers of a changed partner (their company name, company association and fallback address);
- the customers of the deals this run maps (the orders and carts it read): a deal's associations need them;
- every business partner of a web customer read (its company), and every contact person of a partner read
  (a company's deals go to its first active contact person);
- everybody sharing an e-mail with someone read (one contact per e-mail: the survivor may change), and the
  records last mapped as a duplicate of someone read (a changed e-mail frees them).
Items: changed items (a price change saves its item) and combinations, and the items of the lines read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import polars as pl

from fp_hubspot_assets.sap.reader import Keys, SapReader

EMAIL_SQL = {"FP_CUSTOMER": 'LOWER(TRIM(t."Email"))', "OCRD": 'LOWER(TRIM(t."E_Mail"))', "OCPR": 'LOWER(TRIM(t."E_MailL"))'}
CUSTOMER, CARD, PERSON = 't."CustomerId"', 't."CardCode"', 't."CntctCode"'
DOC, CART = 't."DocEntry"', 't."CartId"'
# ``customer_keys``' windows: customers' and addresses' own markers, and the orders and carts this run read.
WINDOWS = ("customers", "addresses", "orders", "carts")


def _values(frame: pl.DataFrame, column: str = "k") -> set[Any]:
    return set(frame[column].drop_nulls().to_list())


class _Queries:
    def __init__(self, reader: SapReader) -> None:
        self.reader, self.source = reader, reader.source

    def since(self, sql: str, moment: datetime, column: str = "k") -> set[Any]:
        return _values(self.source.query(sql, self.source.since_params(moment)), column)

    def keyed(self, sql: str, keys: Iterable[object], column: str = "k") -> set[Any]:
        return _values(self.source.query(sql, {"keys": self.source.keys_param(keys)}), column)

    def by(self, column: str) -> str:
        return self.source.in_keys(column, "keys")


def customer_keys(
    reader: SapReader, since: Mapping[str, datetime], duplicates_of: Callable[[set[str]], set[str]]
) -> Keys:
    """The keys of an incremental customers/addresses read. ``since``: a moment per ``WINDOWS`` entry;
    ``duplicates_of(customer keys)`` → keys last mapped as a duplicate e-mail of one of them."""
    q, s = _Queries(reader), reader.source
    changed_partner = f'SELECT t."CardCode" AS k FROM "OCRD" t WHERE t."CardType" = \'C\' AND {s.sap_changed("t", since["customers"])}'
    web = q.since(f'SELECT t."CustomerId" AS k FROM "FP_CUSTOMER" t WHERE {s.fp_changed("t", since["customers"])}',
                  since["customers"])  # fmt: skip
    web |= q.since(f'SELECT t."CustomerId" AS k FROM "FP_ADDRESS" t WHERE {s.fp_changed("t", since["addresses"])}',
                   since["addresses"])  # fmt: skip
    partners = q.since(changed_partner, since["customers"])
    partners |= q.since(changed_partner, since["addresses"])  # a SAP address (CRD1) moves its partner's marker
    web |= q.keyed(f'SELECT t."CustomerId" AS k FROM "FP_CUSTOMER" t WHERE {q.by(CARD)}', partners)
    deals = reader.deal_keys(since["orders"], since["carts"])
    orders = s.query(
        'SELECT t."CardCode" AS p, c."CustomerId" AS w FROM "ORDR" t LEFT JOIN "FP_CART" c ON c."CartId" = t."U_FP_CartId" '
        f'WHERE {q.by(DOC)}',
        {"keys": s.keys_param(deals.orders)},
    )
    web |= _values(orders, "w") | q.keyed(f'SELECT t."CustomerId" AS k FROM "FP_CART" t WHERE {q.by(CART)}', deals.carts)
    partners |= _values(orders, "p")
    partners |= q.keyed(f'SELECT t."CardCode" AS k FROM "FP_CUSTOMER" t WHERE {q.by(CUSTOMER)}', web)
    persons: set[int] = set()
    web, partners, persons = _same_email(q, web, partners, persons)
    web, partners, persons = _add(q, duplicates_of(_customer_keys(web, partners, persons)), web, partners, persons)
    return Keys(web=frozenset(web), partners=frozenset(partners), persons=frozenset(persons))


def _customer_keys(web: set[int], partners: set[str], persons: set[int]) -> set[str]:
    return {f"W{k}" for k in web} | {f"BP{k}" for k in partners} | {f"CP{k}" for k in persons}


def _same_email(q: _Queries, web: set[int], partners: set[str], persons: set[int]) -> tuple[set[int], set[str], set[int]]:
    """Add everybody whose normalised e-mail is one of theirs (contact persons: of every partner read)."""
    by = q.by
    emails = q.keyed(f'SELECT {EMAIL_SQL["FP_CUSTOMER"]} AS k FROM "FP_CUSTOMER" t WHERE {by(CUSTOMER)}', web)
    emails |= q.keyed(f'SELECT {EMAIL_SQL["OCRD"]} AS k FROM "OCRD" t WHERE {by(CARD)}', partners)
    emails |= q.keyed(f'SELECT {EMAIL_SQL["OCPR"]} AS k FROM "OCPR" t WHERE {by(CARD)}', partners)
    emails |= q.keyed(f'SELECT {EMAIL_SQL["OCPR"]} AS k FROM "OCPR" t WHERE {by(PERSON)}', persons)
    emails.discard("")
    if not emails:
        return web, partners, persons
    new_web = q.keyed(f'SELECT t."CustomerId" AS k FROM "FP_CUSTOMER" t WHERE {by(EMAIL_SQL["FP_CUSTOMER"])}', emails)
    new_persons = q.keyed(f'SELECT t."CntctCode" AS k FROM "OCPR" t WHERE {by(EMAIL_SQL["OCPR"])}', emails)
    new_partners = q.keyed(f'SELECT t."CardCode" AS k FROM "OCRD" t WHERE t."CardType" = \'C\' AND {by(EMAIL_SQL["OCRD"])}',
                           emails)  # fmt: skip
    return _with_partners(q, web | new_web, partners | new_partners, persons | new_persons)


def _with_partners(q: _Queries, web: set[int], partners: set[str], persons: set[int]) -> tuple[set[int], set[str], set[int]]:
    """Every web customer's and contact person's business partner (their company) joins the partners."""
    partners = partners | q.keyed(f'SELECT t."CardCode" AS k FROM "FP_CUSTOMER" t WHERE {q.by(CUSTOMER)}', web)
    partners |= q.keyed(f'SELECT t."CardCode" AS k FROM "OCPR" t WHERE {q.by(PERSON)}', persons)
    return web, partners, persons


def _add(
    q: _Queries, keys: set[str], web: set[int], partners: set[str], persons: set[int]
) -> tuple[set[int], set[str], set[int]]:
    """Customer keys (``W<id>``, ``BP<code>``, ``CP<code>``) joined to the sets, with their partners."""
    more_web = {int(k[1:]) for k in keys if k.startswith("W") and k[1:].isdigit()}
    more_persons = {int(k[2:]) for k in keys if k.startswith("CP") and k[2:].isdigit()}
    more_partners = {k[2:] for k in keys if k.startswith("BP")}
    if not (more_web - web or more_persons - persons or more_partners - partners):
        return web, partners, persons
    return _with_partners(q, web | more_web, partners | more_partners, persons | more_persons)


def item_keys(reader: SapReader, since: datetime, deals_since: Mapping[str, datetime]) -> Keys:
    """The keys of an incremental items read: items changed since ``since`` (a price change saves its item;
    a combination has its own marker) and the items of the order and cart lines this run read."""
    q, s = _Queries(reader), reader.source
    items = q.since(f'SELECT t."ItemCode" AS k FROM "OITM" t WHERE {s.sap_changed("t", since)}', since)
    items |= q.since(f'SELECT t."ItemCode" AS k FROM "FP_ITEM_COMBINATION" t WHERE {s.fp_changed("t", since)}', since)
    deals = reader.deal_keys(deals_since["orders"], deals_since["carts"])
    items |= q.keyed(f'SELECT DISTINCT t."ItemCode" AS k FROM "RDR1" t WHERE {q.by(DOC)}', deals.orders)
    items |= q.keyed(f'SELECT DISTINCT t."ItemCode" AS k FROM "FP_CART_LINE" t WHERE {q.by(CART)}', deals.carts)
    return Keys(items=frozenset(items))
