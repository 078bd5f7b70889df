"""Named crash points for the crash-safety tests: ``FP_FAILPOINT=<name>`` makes the process SIGKILL itself
when it reaches that point, so a test can kill a real ``fp-hubspot sync`` at the one moment it means
(e.g. between releasing an email and claiming it) instead of at a random request count. Unset, it costs
one dictionary lookup."""

from __future__ import annotations

import os
import signal

FAILPOINT_ENV = "FP_FAILPOINT"


def reached(name: str) -> None:
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
