"""A token as env files really hold it (Windows line endings, a zero-width space pasted from a web page):
whitespace is stripped, anything else is refused by name, and the token never reaches stderr, the Dagster
event log, compute logs or the state store — also when the failure is not one of the SDK's exceptions."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fp_demo_store.generate import generate
from fp_hubspot_assets.hubspot.client import HubSpotClient, HubSpotRequestError
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.hubspot.secrets import SecretFormatError, clean_secret
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

REPO = Path(__file__).resolve().parents[2]
SECRET = "pat-na1-0123abcd-4567-89ef-fedc-ba9876543210"


@pytest.mark.parametrize("raw", [SECRET + "\r", SECRET + "\r\n", SECRET + "\n", f"  {SECRET}\t", "\ufeff" + SECRET])
def test_surrounding_whitespace_is_stripped(raw: str) -> None:
    if raw.startswith("\ufeff"):  # a byte-order mark is not whitespace: refused, not guessed away
        with pytest.raises(SecretFormatError, match="U\\+FEFF"):
            clean_secret(raw, "FP_HUBSPOT_ACCESS_TOKEN")
        return
    assert clean_secret(raw, "FP_HUBSPOT_ACCESS_TOKEN") == SECRET


@pytest.mark.parametrize(
    ("raw", "named"),
    [(SECRET + "\u200b", "U+200B ZERO WIDTH SPACE"), (SECRET[:10] + "\r" + SECRET[10:], "U+000D"),
     (SECRET[:5] + "é" + SECRET[5:], "U+00E9"), (SECRET[:5] + " " + SECRET[5:], "U+0020")],
)
def test_other_characters_are_refused_by_name_without_the_value(raw: str, named: str) -> None:
    with pytest.raises(SecretFormatError) as err:
        clean_secret(raw, "FP_HUBSPOT_ACCESS_TOKEN")
    message = str(err.value)
    assert named in message and "FP_HUBSPOT_ACCESS_TOKEN" in message
    assert SECRET[:8] not in message and SECRET[-8:] not in message


@pytest.mark.parametrize("bad", ["\r", "\u200b"])
def test_a_failure_that_is_not_an_sdk_exception_is_redacted(tmp_path: Path, bad: str) -> None:
    """Handed a raw token (no clean_secret), the HTTP library refuses the header and quotes it: we never do."""
    with running_sandbox(tmp_path / "hubspot.db", tokens=[SECRET]) as sb:
        client = HubSpotClient(sb.base_url, SECRET + bad, RateBudget(1000, None))
        with pytest.raises(HubSpotRequestError) as err:
            client.list_properties("contacts")
    assert SECRET not in str(err.value)
    assert err.value.__suppress_context__ and err.value.__cause__ is None  # the original is never printed


# ---------------------------------------------------------------- the whole path: `fp-hubspot sync`
@pytest.fixture(scope="module")
def secret_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    with running_sandbox(tmp_path_factory.mktemp("hub") / "hubspot.db", tokens=[SECRET]) as sb:
        yield sb


def _sync(root: Path, sandbox: SandboxHandle, token: str) -> subprocess.CompletedProcess[str]:
    sap = f"sqlite:///{root / 'sap.db'}"
    generate(sap, 100, seed=5)
    (root / "panel.yaml").write_text(f"integration:\n  base_url: {sandbox.base_url}\n", encoding="utf-8")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text(), encoding="utf-8")
    env = {**os.environ, "DAGSTER_HOME": str(home), "FP_SAP_URL": sap, "FP_STATE_URL": f"sqlite:///{root / 'state.db'}",
           "FP_PANEL_FILE": str(root / "panel.yaml"), "FP_HUBSPOT_ACCESS_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "fp_hubspot_assets.cli", "sync"], capture_output=True, text=True,
                          cwd=root, env=env, timeout=600)


def _files_holding(root: Path, secret: str) -> list[str]:
    """Every file under ``root`` (event log and run databases, compute logs, the state store) holding it."""
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_a_token_with_windows_line_endings_syncs_and_is_never_written(tmp_path: Path, secret_sandbox: SandboxHandle) -> None:
    done = _sync(tmp_path, secret_sandbox, SECRET + "\r\n")
    assert done.returncode == 0, done.stderr[-3000:]
    assert secret_sandbox.stats()["records"].get("contacts", 0) > 0
    assert SECRET not in done.stdout + done.stderr
    assert _files_holding(tmp_path, SECRET) == []


def test_a_token_with_a_zero_width_space_is_refused_clearly_and_never_written(
    tmp_path: Path, secret_sandbox: SandboxHandle
) -> None:
    before = secret_sandbox.stats()["total_requests"]
    done = _sync(tmp_path, secret_sandbox, SECRET + "\u200b")
    assert done.returncode != 0
    assert "FP_HUBSPOT_ACCESS_TOKEN holds a character a token cannot contain (U+200B ZERO WIDTH SPACE" in done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert _files_holding(tmp_path, SECRET) == []
    assert secret_sandbox.stats()["total_requests"] == before  # refused before any request
