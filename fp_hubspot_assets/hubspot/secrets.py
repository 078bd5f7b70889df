"""Secrets read from the environment: surrounding whitespace removed, anything else that cannot be in a
token refused with a message that names the variable and the position, never the value.

An env file saved with Windows line endings leaves a ``\\r`` on the token, and a token copied from a web
page can carry a zero-width space: sent as is, the HTTP library would reject the header and print it whole.
"""

from __future__ import annotations

import unicodedata


class SecretFormatError(ValueError):
    """A secret holds a character no token can hold; the message never contains the secret."""


def clean_secret(raw: str, variable: str) -> str:
    """``raw`` without surrounding whitespace (spaces, tabs, CR/LF); raises SecretFormatError when what is
    left holds a control, invisible or non-ASCII character (HubSpot tokens are printable ASCII)."""
    value = raw.strip()
    for position, char in enumerate(value, start=1):
        if not (char.isascii() and char.isprintable()) or char.isspace():
            name = unicodedata.name(char, "a control character")
            raise SecretFormatError(
                f"the environment variable {variable} holds a character a token cannot contain "
                f"(U+{ord(char):04X} {name}, character {position} of {len(value)}): "
                f"copy the token again or remove that character (the value is not shown)"
            )
    return value
