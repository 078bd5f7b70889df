"""Where asset values live between the steps of a run: one directory per run.

Dagster's default filesystem IO manager keeps one file per asset key, shared by every run. With incremental
reads that is wrong: a ``sync_carts`` run writing its handful of changed orders to ``sap_orders`` while a full
``sync_hubspot`` run works would hand the full run the cart run's frame — the full run would then map a few
deals, see thousands "vanish" and flag them (or stop at the deletion guard), and advance its markers over rows
it never mapped. So each run writes under ``<storage>/runs/<run id>/`` and reads its own values; an input
whose asset is not part of the run (a subset launched from the UI) is loaded from the run that materialized
it last. ``prune`` (called by the run's last step) deletes the directories of finished runs that no longer
hold any asset's latest value, so the disk holds about one run's worth.

Values are pickled, but every polars frame inside one (a source frame, or the frames of a ``Mapped``) goes to a
zstd-compressed Arrow IPC file of its own beside the pickle: pickling a frame would first serialize it into one
more in-memory copy (at 1M customers the orders frame is ~600 MiB). An input may list the columns it needs
(``AssetIn(metadata={"columns": [...]})``, Dagster's convention): only those are read, from every frame of the
value that has them (the deals step reads the orders without their nested lines and of the contacts only their
keys, actions and aliases; the line items the deals' keys only).
"""

from __future__ import annotations

import io
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import polars as pl
from dagster import (
    AssetKey,
    ConfigurableIOManager,
    DagsterInstance,
    DagsterRunStatus,
    InputContext,
    OutputContext,
    RunsFilter,
)

RUNS_DIR = "runs"
FRAMES_SUFFIX = ".frames"  # <asset key>.frames/<n>.arrow: the frames inside that key's value
FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]


def _root(instance: DagsterInstance, base_dir: str) -> Path:
    return Path(base_dir or instance.storage_directory()) / RUNS_DIR


def _path(root: Path, run_id: str, key: AssetKey) -> Path:
    return root.joinpath(run_id, *key.path)


class RunScopedIOManager(ConfigurableIOManager):
    """Pickles each asset value under ``<base_dir>/runs/<run id>/<asset key>``, its polars frames as Arrow IPC
    files in ``<asset key>.frames/`` (base_dir empty: the Dagster instance's storage directory)."""

    base_dir: str = ""

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        path = _path(_root(context.step_context.instance, self.base_dir), context.run_id, context.asset_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_value(path, obj)

    def load_input(self, context: InputContext) -> Any:
        key = context.asset_key
        path = self._stored_path(context.instance, context.step_context.run_id, key)
        metadata = context.definition_metadata or {}
        # Dagster's convention for column projection: AssetIn(metadata={"columns": [...]}) on a frame input
        columns = metadata.get("columns")
        if metadata.get("deferred"):
            return Stored(path, columns, key.to_user_string())
        return read_value(path, columns, key.to_user_string())

    def load_columns(self, instance: DagsterInstance, run_id: str, key: AssetKey, columns: list[str]) -> Any:
        """``key``'s value as an input of run ``run_id`` gets it, only ``columns`` of its frames. For an asset
        check, whose input on its own asset cannot carry a column list: the unique-key check of 4.1M line items
        reads one column, not the whole payload."""
        return read_value(self._stored_path(instance, run_id, key), columns, key.to_user_string())

    def _stored_path(self, instance: DagsterInstance, run_id: str, key: AssetKey) -> Path:
        """This run's value of ``key``, or (not materialized in this run) the latest one of another run."""
        root = _root(instance, self.base_dir)
        path = _path(root, run_id, key)
        if not path.exists():
            latest = instance.get_latest_materialization_event(key)
            path = _path(root, latest.run_id, key) if latest is not None else path
        if not path.exists():
            raise FileNotFoundError(f"no stored value of {key.to_user_string()}: materialize it (or run the whole job) first")
        return path


@dataclass(frozen=True)
class Stored:
    """An input not loaded yet (``AssetIn(metadata={"deferred": True})``), for a step that may not need it: native
    orders load theirs only when ``commerce.objects`` sends orders (at 1M customers they are 1.5 GiB)."""

    path: Path
    columns: list[str] | None
    what: str

    def load(self) -> Any:
        return read_value(self.path, self.columns, self.what)


class _FramePickler(pickle.Pickler):
    """Writes each polars frame of the value to ``<frames>/<n>.arrow`` and pickles only its file name."""

    def __init__(self, out: IO[bytes], frames: Path) -> None:
        super().__init__(out, protocol=pickle.HIGHEST_PROTOCOL)
        self.frames = frames
        self.count = 0

    def persistent_id(self, obj: Any) -> str | None:
        if not isinstance(obj, pl.DataFrame):
            return None
        name = f"{self.count}.arrow"
        self.count += 1
        self.frames.mkdir(exist_ok=True)
        tmp = self.frames / f"{name}.tmp"
        # compressed: polars memory-maps an uncompressed file and the mapped pages count in the process's RSS beside
        # the frame read from them (at 1M customers the orders' 588-MiB file); a compressed one is decompressed
        # straight into the frame's buffers, and zstd reads about as fast (bench/README.md §3c)
        obj.write_ipc(tmp, compression="zstd")
        tmp.replace(self.frames / name)  # a new file, never rewritten in place: a reader of the old one is unaffected
        return name


class _FrameUnpickler(pickle.Unpickler):
    """Reads each frame's file back; with ``columns`` only those of them the frame has (a ``Mapped``'s records,
    issues and aliases have different columns, and its aliases may be absent). A value that is a frame itself (a
    source frame) must have every listed column: one stored before the column existed is an error."""

    def __init__(self, src: IO[bytes], frames: Path, columns: list[str] | None, what: str) -> None:
        super().__init__(src)
        self.frames, self.columns, self.what = frames, columns, what
        self.found: set[str] = set()

    def persistent_load(self, pid: Any) -> pl.DataFrame:
        path = self.frames / str(pid)
        if self.columns is None:
            return pl.read_ipc(path)
        schema = pl.read_ipc_schema(path)
        wanted = [c for c in self.columns if c in schema]
        self.found.update(wanted)
        return pl.read_ipc(path, columns=wanted)  # only these columns' buffers are read

    def load(self) -> Any:
        value = super().load()
        missing = [c for c in self.columns or [] if c not in self.found]
        if missing and isinstance(value, pl.DataFrame):
            raise ValueError(f"the stored value of {self.what} has no column(s) {missing} (it predates them): "
                             f"materialize {self.what} again (or run the whole job)")
        return value


def write_value(path: Path, obj: Any) -> None:
    """Store ``obj`` at ``path`` (its frames in ``path.frames/``); the pickle is replaced last, atomically."""
    buffer = io.BytesIO()
    _FramePickler(buffer, path.with_name(path.name + FRAMES_SUFFIX)).dump(obj)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        out.write(buffer.getbuffer())
    tmp.replace(path)


def read_value(path: Path, columns: list[str] | None = None, what: str = "") -> Any:
    """The value stored at ``path``; ``columns``: read only these columns of its frame(s)."""
    with path.open("rb") as src:
        return _FrameUnpickler(src, path.with_name(path.name + FRAMES_SUFFIX), columns, what or path.name).load()


def prune(instance: DagsterInstance, base_dir: str = "") -> list[str]:
    """Delete the value directories of finished runs that hold no asset's latest value; returns their run ids."""
    root = _root(instance, base_dir)
    if not root.exists():
        return []
    runs = {p.name: p for p in root.iterdir() if p.is_dir()}
    keys = {AssetKey(list(f.relative_to(run_dir).parts)) for run_dir in runs.values() for f in run_dir.rglob("*")
            if f.is_file() and f.suffix != ".tmp" and not f.parent.name.endswith(FRAMES_SUFFIX)}  # fmt: skip
    keep = set()
    for key in keys:
        latest = instance.get_latest_materialization_event(key)
        if latest is not None:
            keep.add(latest.run_id)
    candidates = sorted(set(runs) - keep)
    if not candidates:
        return []
    known = {r.run_id: r.status for r in instance.get_runs(RunsFilter(run_ids=candidates))}
    # finished, or unknown to the instance (deleted): nothing will read these values again
    removed = [run_id for run_id in candidates if run_id not in known or known[run_id] in FINISHED]
    for run_id in removed:
        shutil.rmtree(runs[run_id], ignore_errors=True)
    return removed
