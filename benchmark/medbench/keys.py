"""The installation's secret key: it derives per-run opaque case ids and seals prepared manifests.

One random 32-byte key per ``MEDBENCH_HOME`` (``keys/secret``, mode 0600), made on first use.
The sandboxed child never sees ``MEDBENCH_HOME``, so it can neither map opaque ids back to case
names nor re-seal a manifest it edited. It is not a signature others can check: records are
verified by re-scoring their saved predictions (``medbench verify``), not by this key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from medbench.errors import MedbenchError
from medbench.home import medbench_home

KEY_BYTES = 32


def key_path() -> Path:
    return medbench_home() / "keys" / "secret"


def installation_key() -> bytes:
    """The key of this ``MEDBENCH_HOME``; created atomically (O_EXCL) the first time."""
    path = key_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = _create(path)
    except OSError as exc:
        raise MedbenchError(f"cannot read medbench's key {path}: {exc.strerror or exc}") from None
    if len(data) != KEY_BYTES:
        raise MedbenchError(
            f"medbench's key {path} holds {len(data)} bytes, not {KEY_BYTES}: it was damaged; "
            "remove it (prepared caches are then sealed again by `medbench data prepare --force`)"
        )
    return data


def _create(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        tmp = path.with_name(f".secret.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process made the key first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return path.read_bytes()
    except OSError as exc:
        raise MedbenchError(f"cannot create medbench's key {path}: {exc.strerror or exc}") from None


def mac(purpose: str, *parts: str | bytes) -> bytes:
    """HMAC-SHA256 under the installation key of ``purpose`` and ``parts`` (NUL-separated)."""
    h = hmac.new(installation_key(), purpose.encode(), hashlib.sha256)
    for part in parts:
        h.update(b"\0" + (part.encode() if isinstance(part, str) else part))
    return h.digest()
