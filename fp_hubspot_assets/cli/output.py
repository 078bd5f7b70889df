"""What every command prints with: colour on a terminal (or with FORCE_COLOR), plain text otherwise."""

from __future__ import annotations

import os
import sys

GREEN, RED, YELLOW, RESET = "\033[32m", "\033[31m", "\033[33m", "\033[0m"


def color(text: str, code: str) -> str:
    return f"{code}{text}{RESET}" if sys.stdout.isatty() or os.environ.get("FORCE_COLOR") else text
