"""Engineer mode: a password, stored only as a salted hash, and the unlocked/locked state.

The password is set on first use (whoever first opens engineer mode on a new station chooses it) and
stored as an scrypt hash (PBKDF2-HMAC-SHA256 where the Python build lacks scrypt) with a random salt,
in its own file readable by the owner only. A corrupt password file keeps engineer mode locked --
it is never silently treated as "no password yet", which would let anyone set a new one; the message
says which file an administrator deletes to reset it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

MIN_PASSWORD_LENGTH = 6
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
_PBKDF2_ITERATIONS = 600_000


class CredentialsError(Exception):
    """The password file is corrupt or unreadable, or a new password is not acceptable."""


def _derive(password: str, record: dict[str, Any]) -> bytes:
    salt = bytes.fromhex(record["salt"])
    if record["algorithm"] == "scrypt":
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=int(record["n"]), r=int(record["r"]),
                              p=int(record["p"]), maxmem=64 * 1024 * 1024, dklen=32)
    if record["algorithm"] == "pbkdf2-sha256":
        return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, int(record["iterations"]), dklen=32)
    raise CredentialsError(f"unknown password hash algorithm {record['algorithm']!r}")


class PasswordStore:
    """The engineer password in ``path`` (a small JSON file holding the salted hash)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        reset = f"engineer mode stays locked; to reset the password an administrator deletes {self.path}"
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CredentialsError(f"the engineer password file {self.path} is unreadable ({exc}); {reset}") from exc
        needed = {"algorithm", "salt", "hash"}
        if not isinstance(record, dict) or not needed <= set(record):
            raise CredentialsError(f"the engineer password file {self.path} is corrupt; {reset}")
        try:
            bytes.fromhex(record["salt"])
            bytes.fromhex(record["hash"])
        except (TypeError, ValueError):
            raise CredentialsError(f"the engineer password file {self.path} is corrupt; {reset}") from None
        return record

    def is_set(self) -> bool:
        """Whether a password was chosen. Raises :class:`CredentialsError` for a corrupt file."""
        return self._read() is not None

    def verify(self, password: str) -> bool:
        """True if ``password`` is the engineer password (constant-time comparison)."""
        record = self._read()
        if record is None:
            return False
        try:
            derived = _derive(password, record)
        except (KeyError, ValueError) as exc:
            raise CredentialsError(f"the engineer password file {self.path} is corrupt ({exc})") from exc
        return hmac.compare_digest(derived, bytes.fromhex(record["hash"]))

    def set_password(self, new: str, old: str | None = None) -> None:
        """Set the password: on first use ``old`` is not needed; to change it, ``old`` must match."""
        if len(new) < MIN_PASSWORD_LENGTH:
            raise CredentialsError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
        if self.is_set() and (old is None or not self.verify(old)):
            raise CredentialsError("the current password is wrong")
        salt = secrets.token_bytes(16)
        if hasattr(hashlib, "scrypt"):
            record: dict[str, Any] = {"algorithm": "scrypt", **_SCRYPT}
        else:  # Python built without OpenSSL scrypt
            record = {"algorithm": "pbkdf2-sha256", "iterations": _PBKDF2_ITERATIONS}
        record["salt"] = salt.hex()
        record["hash"] = _derive(new, record).hex()
        record["set"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class EngineerSession:
    """Whether engineer mode is unlocked; it locks itself after ``auto_lock_s`` without activity."""

    def __init__(self, store: PasswordStore, auto_lock_s: float = 900.0, clock=time.monotonic) -> None:
        self.store = store
        self.auto_lock_s = float(auto_lock_s)
        self._clock = clock
        self._unlocked = False
        self._last_activity = 0.0

    @property
    def unlocked(self) -> bool:
        return self._unlocked

    def unlock(self, password: str) -> bool:
        ok = self.store.verify(password)
        if ok:
            self._unlocked = True
            self._last_activity = self._clock()
        return ok

    def set_first_password(self, password: str) -> None:
        """First use: choose the password and unlock."""
        if self.store.is_set():
            raise CredentialsError("a password is already set")
        self.store.set_password(password)
        self._unlocked = True
        self._last_activity = self._clock()

    def change_password(self, old: str, new: str) -> None:
        """Change the password while unlocked; ``old`` must still be given (someone who finds an
        unlocked station cannot lock the engineers out). Raises :class:`CredentialsError`."""
        if not self._unlocked:
            raise CredentialsError("unlock engineer mode before changing its password")
        if new == old:
            raise CredentialsError("the new password is the same as the current one")
        self.store.set_password(new, old=old)
        self._last_activity = self._clock()

    def lock(self) -> None:
        self._unlocked = False

    def touch(self) -> None:
        """Engineer activity: restarts the auto-lock countdown."""
        if self._unlocked:
            self._last_activity = self._clock()

    def expired(self) -> bool:
        """True (and locks) when the auto-lock time has passed without activity."""
        if self._unlocked and self.auto_lock_s > 0 and self._clock() - self._last_activity > self.auto_lock_s:
            self._unlocked = False
            return True
        return False
