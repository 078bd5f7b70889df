"""Benchmark scripts, each run once at a tiny size so they cannot rot (the figures are in bench/README.md).
The scripts run as subprocesses side by side to keep this file well under a minute."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from rate_budget import busy_spans, utilization  # noqa: E402 - bench/ is not a package

# Only a guard against a hung script, never a speed check: on a loaded 2-core machine the scripts side by
# side took over two minutes (speed is measured by the scripts themselves, by hand).
TIMEOUT = 1200


def _commands(tmp: Path) -> dict[str, list[str]]:
    return {
        "million_rows": ["million_rows.py", "--customers", "200", "--runs", "1", "--keep", str(tmp / "mr")],
        "rate_budget": ["rate_budget.py", "--customers", "150", "--runs", "1", "--keep", str(tmp / "rb")],
        "sensor_latency": ["sensor_latency.py", "--carts", "2000", "--ticks", "2", "--customers", "120",
                           "--samples", "1", "--interval", "1"],  # fmt: skip
        "time_model": ["time_model.py", "--check", "500", "--runs", "1"],
        "change_latency": ["change_latency.py", "--customers", "150", "--keep", str(tmp / "cl")],
        "whole_job_memory": ["whole_job_memory.py", "--customers", "150", "--keep", str(tmp / "wj")],
    }


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    tmp = tmp_path_factory.mktemp("bench")
    procs = {
        name: subprocess.Popen([sys.executable, str(BENCH / args[0]), *args[1:]], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=BENCH.parent)  # fmt: skip
        for name, args in _commands(tmp).items()
    }
    done = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=TIMEOUT)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out)
    yield done


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


def test_million_rows_reports_ratio_and_memory(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(outputs["million_rows"])
    assert "RESULT {" in out and '"ratio"' in out and '"peak_mib"' in out
    assert "contacts" in out and "unchanged)" in out  # the diff ran against the primed state store


def test_whole_job_memory_reports_each_steps_peak(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(outputs["whole_job_memory"])
    assert "peak RSS of the job's process:" in out
    assert "line_item_payloads" in out and "hubspot_line_items" in out  # every step of the job is listed
    assert re.search(r"contact_payloads [1-9]", out), "the mapping ran on the generated store"


def test_rate_budget_runs_both_scenarios_and_hubspot_is_exact(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(outputs["rate_budget"])
    assert "median alone: utilization" in out
    assert "other client:" in out
    assert "HubSpot exact afterwards: yes" in out


def test_sensor_latency_times_ticks_and_a_cart(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(outputs["sensor_latency"])
    assert "new_carts tick, 2,000 carts, first tick" in out
    assert "median latency" in out and "+ run" in out


def test_time_model_projects_every_tier(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(outputs["time_model"])
    for tier in ("free", "starter", "professional", "enterprise", "public app"):
        assert f"  {tier}" in out
    assert "8.8 min" in out  # 10,000 upserts at 19 requests per second


def test_utilization_of_a_saturated_timeline_is_one() -> None:
    """19 requests per 1-s window, sent in one burst per window for 10 windows: exactly the capacity."""
    starts = [w + i * 0.001 for w in range(10) for i in range(19)]
    assert len(busy_spans(starts, 1.0)) == 1
    value, busy = utilization(starts, rejected=0, limit=19, window=1.0)
    assert value == pytest.approx(190 / (19 * (busy + 1)), rel=1e-9)
    assert value > 0.95
    half, _ = utilization(starts[::2], rejected=0, limit=19, window=1.0)
    assert half == pytest.approx(value / 2, rel=0.05)


def test_change_latency_reads_every_entity_incrementally(outputs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = _ok(outputs["change_latency"])
    assert "| 1 cart | sync_carts |" in out
    one_cart = next(line for line in out.splitlines() if line.startswith("| 1 cart |"))
    # customers / addresses / items / orders / carts: each read by marker or as a dependant's key
    assert one_cart.count("(inc)") == 5, one_cart
    full = next(line for line in out.splitlines() if line.startswith("| full run"))
    assert "(inc)" not in full
