"""Encryption of secrets at rest (OAuth tokens) in the state store.

The state store may live in a shared PostgreSQL database or in a SQLite file that gets copied around, so
tokens are never stored in clear. They are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from the
``cryptography`` package) under a key that lives only in the environment variable ``FP_STATE_KEY``.

Key rotation: ``FP_STATE_KEY`` may hold several comma-separated keys. The first one encrypts; every one of
them is tried when decrypting (``MultiFernet``), so an operator can prepend a new key, let the tokens be
refreshed (each refresh re-encrypts with the new key), then drop the old one.

Generate a key with ``python -c "from fp_hubspot_assets.state.crypto import generate_key; print(generate_key())"``.
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_ENV_VAR = "FP_STATE_KEY"


class StateKeyError(RuntimeError):
    """FP_STATE_KEY is missing, malformed, or not the key the stored secrets were encrypted with."""


def generate_key() -> str:
    """A fresh random Fernet key (url-safe base64 text), suitable as the value of FP_STATE_KEY."""
    return Fernet.generate_key().decode("ascii")


def load_key(key: str | None = None) -> MultiFernet:
    """The cipher for ``key`` (default: the environment variable FP_STATE_KEY), validated.

    Raises StateKeyError naming FP_STATE_KEY when the variable is unset/empty or a key in it is not a valid
    Fernet key (32 url-safe base64-encoded bytes). The key itself never appears in the message.
    """
    raw = os.environ.get(KEY_ENV_VAR) if key is None else key
    parts = [part.strip() for part in (raw or "").split(",") if part.strip()]
    if not parts:
        raise StateKeyError(
            f"{KEY_ENV_VAR} is not set: the state store needs it to encrypt and decrypt OAuth tokens. "
            f'Generate one with `python -c "from fp_hubspot_assets.state.crypto import generate_key; '
            f'print(generate_key())"` and keep it secret.'
        )
    ciphers = []
    for position, part in enumerate(parts, start=1):
        try:
            ciphers.append(Fernet(part.encode("ascii")))
        except (ValueError, UnicodeEncodeError) as exc:
            raise StateKeyError(
                f"{KEY_ENV_VAR} key #{position} is not a valid Fernet key "
                "(expected 32 url-safe base64-encoded bytes, as made by generate_key())"
            ) from exc
    return MultiFernet(ciphers)


def encrypt(plaintext: str, key: str | None = None) -> str:
    """``plaintext`` encrypted (and authenticated) under the first key of FP_STATE_KEY, as ASCII text."""
    return load_key(key).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(ciphertext: str, key: str | None = None) -> str:
    """The plaintext of ``ciphertext``; StateKeyError naming FP_STATE_KEY when no key in it fits."""
    cipher = load_key(key)
    try:
        return cipher.decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError) as exc:
        raise StateKeyError(
            f"cannot decrypt a stored secret: {KEY_ENV_VAR} is not the key it was encrypted with "
            "(or the stored value is damaged). Restore the previous key, or list it after the new one "
            f"as {KEY_ENV_VAR}=<new>,<old>."
        ) from exc
