"""In-memory CRM state with write-through persistence to SQLite.

Every request mutates memory and marks what it touched; `commit()` (called by the HTTP layer before it
answers) writes exactly those rows in one transaction, so a request that got its 2xx is on disk.
SQLite runs in WAL mode with synchronous=NORMAL: durable across a process crash, cheap enough that the
store is never the sandbox's bottleneck."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from .catalog import ASSOCIATION_TYPES, OBJECT_TYPE_IDS

FIRST_ID = 10_000_001  # HubSpot ids are large integers; starting high catches code that assumes small ones

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (type TEXT, id INTEGER, data BLOB, PRIMARY KEY (type, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS assoc (from_type TEXT, from_id INTEGER, to_type TEXT, to_id INTEGER, types BLOB,
    PRIMARY KEY (from_type, from_id, to_type, to_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS docs (key TEXT PRIMARY KEY, data BLOB);
"""

AssocKey = tuple[str, int]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Record:
    """One CRM object. `props` is replaced (never mutated) on every write, so the previous dict can serve
    as the search-visible version while a search delay is in force."""

    __slots__ = ("id", "props", "created", "updated", "archived", "archived_at", "prev", "visible_at")

    def __init__(self, rec_id: int, props: dict[str, str], created: int, updated: int) -> None:
        self.id = rec_id
        self.props = props
        self.created = created
        self.updated = updated
        self.archived = False
        self.archived_at = 0
        self.prev: dict[str, str] | None = None
        self.visible_at = 0

    def to_row(self) -> bytes:
        return orjson.dumps({"p": self.props, "c": self.created, "u": self.updated, "a": self.archived, "x": self.archived_at})

    @classmethod
    def from_row(cls, rec_id: int, data: bytes) -> Record:
        d = orjson.loads(data)
        rec = cls(rec_id, d["p"], d["c"], d["u"])
        rec.archived = d["a"]
        rec.archived_at = d["x"]
        return rec


_TYPE_SETS: dict[frozenset[int], frozenset[int]] = {}


def type_set(types: frozenset[int] | set[int]) -> frozenset[int]:
    """One shared frozenset per combination of association types: millions of associations hold a handful of
    combinations, and a set of their own made half of the sandbox's memory per association."""
    key = frozenset(types)
    return _TYPE_SETS.setdefault(key, key)


def unique_key(prop: str, value: str) -> str:
    """How a unique property's value is compared: emails without regard to case, others exactly."""
    return value.lower() if prop == "email" else value


class Store:
    """All records, associations and small documents (schema, OAuth grants) of one sandbox portal."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._dirty_records: dict[tuple[str, int], Record] = {}
        self._dirty_assoc: set[tuple[str, int, str, int]] = set()
        self._dirty_docs: set[str] = set()
        self._clear_memory()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._load()

    # ---- memory -------------------------------------------------------------------------------------
    def _clear_memory(self) -> None:
        self.records: dict[str, dict[int, Record]] = {t: {} for t in OBJECT_TYPE_IDS}
        self.order: dict[str, list[int]] = {t: [] for t in OBJECT_TYPE_IDS}  # ascending ids, archived included
        self.live: dict[str, int] = dict.fromkeys(OBJECT_TYPE_IDS, 0)
        self.assoc: dict[AssocKey, dict[AssocKey, frozenset[int]]] = {}
        self.unique: dict[str, dict[str, dict[str, int]]] = {t: {} for t in OBJECT_TYPE_IDS}
        self.docs: dict[str, Any] = {}
        self.seq = FIRST_ID

    def _load(self) -> None:
        assert self._db is not None
        for obj_type, rec_id, data in self._db.execute("SELECT type, id, data FROM records ORDER BY id"):
            if obj_type not in self.records:
                continue
            rec = Record.from_row(rec_id, data)
            self.records[obj_type][rec_id] = rec
            self.order[obj_type].append(rec_id)
            if not rec.archived:
                self.live[obj_type] += 1
            self.seq = max(self.seq, rec_id + 1)
        # the type names of 16M association rows as the shared strings, not a copy per row (~2 GiB at 1M)
        name = {t: t for t in OBJECT_TYPE_IDS}
        for ft, fid, tt, tid, types in self._db.execute("SELECT from_type, from_id, to_type, to_id, types FROM assoc"):
            self.assoc.setdefault((name.get(ft, ft), fid), {})[(name.get(tt, tt), tid)] = type_set(set(orjson.loads(types)))
        for key, data in self._db.execute("SELECT key, data FROM docs"):
            self.docs[key] = orjson.loads(data)
        self.seq = max(self.seq, int(self.docs.get("seq", FIRST_ID)))

    def next_id(self) -> int:
        rec_id = self.seq
        self.seq += 1
        self._dirty_docs.add("seq")
        return rec_id

    # ---- records ------------------------------------------------------------------------------------
    def add(self, obj_type: str, rec: Record) -> None:
        self.records[obj_type][rec.id] = rec
        self.order[obj_type].append(rec.id)
        self.live[obj_type] += 1
        self._dirty_records[(obj_type, rec.id)] = rec

    def touched(self, obj_type: str, rec: Record) -> None:
        self._dirty_records[(obj_type, rec.id)] = rec

    def archive(self, obj_type: str, rec: Record) -> None:
        rec.archived = True
        rec.archived_at = now_ms()
        self.live[obj_type] -= 1
        self._dirty_records[(obj_type, rec.id)] = rec
        self.drop_associations(obj_type, rec.id)

    def get_live(self, obj_type: str, rec_id: int) -> Record | None:
        rec = self.records[obj_type].get(rec_id)
        return rec if rec is not None and not rec.archived else None

    def iter_live(self, obj_type: str) -> Iterator[Record]:
        recs = self.records[obj_type]
        for rec_id in self.order[obj_type]:
            rec = recs[rec_id]
            if not rec.archived:
                yield rec

    # ---- associations (always stored in both directions) --------------------------------------------
    def associate(self, a: AssocKey, b: AssocKey, type_id: int) -> bool:
        """Add one association and its inverse; True when it was new."""
        inverse = ASSOCIATION_TYPES[type_id].inverse
        forward = self.assoc.setdefault(a, {})
        if type_id in forward.get(b, ()):
            return False
        forward[b] = type_set(forward.get(b, frozenset()) | {type_id})
        backward = self.assoc.setdefault(b, {})
        backward[a] = type_set(backward.get(a, frozenset()) | {inverse})
        self._dirty_assoc.add((*a, *b))
        self._dirty_assoc.add((*b, *a))
        return True

    def unassociate(self, a: AssocKey, b: AssocKey, type_id: int | None = None) -> None:
        """Remove one association type (or all of them) between a and b, in both directions."""
        for x, y, tid in ((a, b, type_id), (b, a, ASSOCIATION_TYPES[type_id].inverse if type_id else None)):
            links = self.assoc.get(x, {})
            if y in links:
                left = frozenset() if tid is None else links[y] - {tid}
                if left:
                    links[y] = type_set(left)
                else:
                    del links[y]
                self._dirty_assoc.add((*x, *y))

    def drop_associations(self, obj_type: str, rec_id: int) -> None:
        me = (obj_type, rec_id)
        for other in list(self.assoc.get(me, {})):
            self.unassociate(me, other)

    def associations_of(self, a: AssocKey, to_type: str) -> list[tuple[int, frozenset[int]]]:
        links = self.assoc.get(a)
        if not links:
            return []
        return sorted((oid, types) for (otype, oid), types in links.items() if otype == to_type)

    # ---- documents (schema, oauth grants, ...) ------------------------------------------------------
    def set_doc(self, key: str, value: Any) -> None:
        self.docs[key] = value
        self._dirty_docs.add(key)

    # ---- persistence --------------------------------------------------------------------------------
    def commit(self) -> None:
        """Write everything touched since the last commit in one transaction."""
        if not (self._dirty_records or self._dirty_assoc or self._dirty_docs):
            return
        records, assoc, docs = self._dirty_records, self._dirty_assoc, self._dirty_docs
        self._dirty_records, self._dirty_assoc, self._dirty_docs = {}, set(), set()
        if self._db is None:
            return
        self.docs["seq"] = self.seq
        db = self._db
        db.execute("BEGIN")
        try:
            if records:
                db.executemany(
                    "INSERT OR REPLACE INTO records (type, id, data) VALUES (?, ?, ?)",
                    [(t, i, rec.to_row()) for (t, i), rec in records.items()],
                )
            upserts, deletes = [], []
            for ft, fid, tt, tid in assoc:
                types = self.assoc.get((ft, fid), {}).get((tt, tid))
                if types:
                    upserts.append((ft, fid, tt, tid, orjson.dumps(sorted(types))))
                else:
                    deletes.append((ft, fid, tt, tid))
            if upserts:
                db.executemany("INSERT OR REPLACE INTO assoc VALUES (?, ?, ?, ?, ?)", upserts)
            if deletes:
                db.executemany(
                    "DELETE FROM assoc WHERE from_type=? AND from_id=? AND to_type=? AND to_id=?", deletes
                )
            for key in docs:
                if key in self.docs:
                    db.execute("INSERT OR REPLACE INTO docs VALUES (?, ?)", (key, orjson.dumps(self.docs[key])))
                else:
                    db.execute("DELETE FROM docs WHERE key=?", (key,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def wipe(self, keep_docs: tuple[str, ...] = ()) -> None:
        """Forget every record and association (and documents not listed in keep_docs)."""
        kept = {k: self.docs[k] for k in keep_docs if k in self.docs}
        seq = self.seq  # ids are never reused, even after a wipe: clients may still cache old ones
        self._clear_memory()
        self.seq = seq
        self.docs.update(kept)
        kept["seq"] = seq
        self._dirty_records, self._dirty_assoc, self._dirty_docs = {}, set(), set()
        if self._db is not None:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM records")
            self._db.execute("DELETE FROM assoc")
            self._db.execute("DELETE FROM docs")
            for key, value in kept.items():
                self._db.execute("INSERT INTO docs VALUES (?, ?)", (key, orjson.dumps(value)))
            self._db.execute("COMMIT")

    def close(self) -> None:
        self.commit()
        if self._db is not None:
            self._db.close()
            self._db = None
