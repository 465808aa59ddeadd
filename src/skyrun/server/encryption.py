"""Encryption at rest of block secrets: Fernet, with one key per installation.

The key is SKYRUN_ENCRYPTION_KEY. Without it, a SQLite installation generates one
into `SKYRUN_HOME/encryption.key` (mode 0600) the first time a secret is written or
read; a PostgreSQL server refuses to start, because every replica must encrypt with
the same key and a key generated on one machine would be unknown to the others.

`cryptography` is imported only when a block is stored or read (not by a process
that only runs flows).
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from skyrun.server.errors import SkyrunServerError
from skyrun.settings import Settings, check_fernet_key, ensure_private_dir

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

KEY_FILE_NAME = "encryption.key"
ENV_NAME = "SKYRUN_ENCRYPTION_KEY"


class EncryptionKeyMissing(Exception):
    """A PostgreSQL server has no SKYRUN_ENCRYPTION_KEY; the message says what to do."""


class EncryptionUnavailable(SkyrunServerError):
    """There is no usable key here (an embedded process on PostgreSQL without the setting,
    a damaged key file)."""

    status_code = 409


class UndecryptableSecret(SkyrunServerError):
    """A stored secret does not decrypt with this server's key (the key was changed)."""

    status_code = 409


def is_sqlite(settings: Settings) -> bool:
    return settings.resolved_database_url.startswith("sqlite")


def require_key_for_server(settings: Settings) -> None:
    """Refuse a PostgreSQL server without SKYRUN_ENCRYPTION_KEY (called before it starts).

    Raises:
        EncryptionKeyMissing: With the reason and the fix.
    """
    if settings.encryption_key is None and not is_sqlite(settings):
        raise EncryptionKeyMissing(
            f"{ENV_NAME} is not set: a server on PostgreSQL needs it to encrypt block secrets, "
            "and every replica must use the same key (a key generated here would be unknown "
            "to the others). Generate one with python -c 'from cryptography.fernet import "
            f"Fernet; print(Fernet.generate_key().decode())' and set {ENV_NAME} on every "
            "server and embedded process that uses this database"
        )


def key_file_key(home: Path) -> str:
    """The key in `home/encryption.key`, generated there (0600) if there is none.

    Race-safe: the new key is written whole to a private temporary file, then linked
    to its name, which fails if another process linked its key first; then that key
    is the one read. Nobody ever reads a half-written key.
    """
    path = home / KEY_FILE_NAME
    if not path.exists():
        ensure_private_dir(home)
        tmp = home / f".{KEY_FILE_NAME}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(base64.urlsafe_b64encode(os.urandom(32)).decode("ascii") + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made the key first: use theirs
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_text().strip()
    try:
        return check_fernet_key(key)
    except ValueError as exc:
        raise EncryptionUnavailable(f"{path} {exc}; fix it, or set {ENV_NAME}") from None


class SecretBox:
    """Encrypts and decrypts secret values with the installation's key (found on first use)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._fernet: Fernet | None = None
        self._key = ""
        self._lock = threading.Lock()

    def _cipher(self) -> Fernet:
        with self._lock:
            if self._fernet is None:
                # Imported here: only a process that stores or reads blocks needs it.
                from cryptography.fernet import Fernet

                key = self._settings.encryption_key
                if key is None:
                    if not is_sqlite(self._settings):
                        try:
                            require_key_for_server(self._settings)
                        except EncryptionKeyMissing as exc:
                            raise EncryptionUnavailable(str(exc)) from None
                    key = key_file_key(self._settings.home)
                self._key = key
                self._fernet = Fernet(key.encode("ascii"))
            return self._fernet

    def key(self) -> str:
        """The installation's key itself (to derive other keys from, e.g. UI sessions')."""
        self._cipher()
        return self._key

    def encrypt(self, plaintext: str) -> str:
        """A Fernet token for `plaintext`."""
        return self._cipher().encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, what: str) -> str:
        """The plaintext of `token`.

        Args:
            token: A token made by `encrypt`.
            what: What the secret is, for the error (e.g. "block secret/db field value").

        Raises:
            UndecryptableSecret: This key did not make the token.
        """
        from cryptography.fernet import InvalidToken  # as in _cipher: loaded on use only

        try:
            return self._cipher().decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise UndecryptableSecret(
                f"{what} cannot be decrypted with this server's encryption key: it was stored "
                f"under another key. Set {ENV_NAME} (or SKYRUN_HOME/{KEY_FILE_NAME}) back to "
                "the key it was written with, or store the secret again"
            ) from None
