"""A step that fails because the set-up is broken fails with the preflight's one line, not a traceback.

Dagster makes the first failed step's error the error of the run's failure event (what the UI shows under
"Execution of run … failed"). The source readers run in parallel with the first HubSpot writer, so on a broken
set-up (no SAP database, an invalid panel, an unwritable state store) any of them can fail first: each one that
fails re-runs the preflight (read-only, no HubSpot request) and, when it names the problem, fails with that line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Failure

from fp_hubspot_assets.preflight import PreflightError, preflight


@contextmanager
def broken_setup_as_one_line(panel_path: str | None, sap_url: str, state_url: str) -> Iterator[None]:
    """Run the body; if it raises and the preflight finds the set-up broken, fail with the preflight's line
    (``Failure`` without retries: a retry cannot fix it); any other error propagates unchanged."""
    try:
        yield
    except Failure:
        raise
    except Exception:
        try:
            preflight(panel_path, sap_url, state_url)
        except PreflightError as problem:
            raise Failure(description=str(problem), allow_retries=False) from None
        raise
