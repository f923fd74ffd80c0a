"""The embedded server's own credential: generated once, kept in the data directory.

On a shared machine (a cluster login node) anything listening on 127.0.0.1 is open to
every user, and a FireWorks LaunchPad is a code-execution channel (a job names the
function the worker imports and calls). So the embedded server runs with ``--auth``
and one user, created on first start with a random password. The password lives in
``<data_dir>/credentials.json`` (mode 0600, the directory 0700): only the owner of the
data directory (and root) can read it, and chggen reads it itself, so no command
needs it typed.

SecantusDB listens on TCP only (no Unix socket), which is why a credential and not a
socket's file permissions keeps other users out.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

from chggen_flows.errors import ConfigError

CREDENTIALS_FILE = "credentials.json"
#: The one user of an embedded server (role ``root`` in ``admin``).
OWNER = "chggen-owner"
FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True)
class Credential:
    """User name and password of the embedded server's owner.

    Attributes
    ----------
    username, password
        SCRAM-SHA-256 credentials (authentication database ``admin``).
    provisioned
        Whether the user exists in the server's storage (False between writing the
        file and creating the user, so an interrupted first start is redone).
    """

    username: str
    password: str
    provisioned: bool = False

    def userinfo(self) -> str:
        """``user:password@`` for a connection string (percent-encoded)."""
        return f"{quote_plus(self.username)}:{quote_plus(self.password)}@"

    def __repr__(self) -> str:  # never show the password in a traceback or log
        return f"Credential(username={self.username!r}, password='**********')"


def credentials_path(data_dir: Path) -> Path:
    """Where the credential of the embedded server of ``data_dir`` is kept."""
    return Path(data_dir) / CREDENTIALS_FILE


def secure_data_dir(data_dir: Path) -> bool:
    """Make ``data_dir`` private to its owner (mode 0700); return whether it changed.

    Raises
    ------
    ConfigError
        When the directory belongs to another user (chggen would not be the only one
        able to read the credential).
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    info = data_dir.stat()
    if info.st_uid != os.geteuid():
        raise ConfigError(
            f"data directory {data_dir} belongs to another user (uid {info.st_uid})",
            hint="use a data directory of your own (CHGGEN_DATA_DIR)",
        )
    if info.st_mode & 0o777 != DIR_MODE:
        data_dir.chmod(DIR_MODE)
        return True
    return False


def read_credential(data_dir: Path) -> Credential | None:
    """The credential kept in ``data_dir``, or None if there is none yet.

    A file that others can read is tightened to 0600 (its password may have been
    seen: the caller decides whether to replace it).

    Raises
    ------
    ConfigError
        When the file exists but cannot be read or is malformed.
    """
    path = credentials_path(data_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the database credential {path}: {exc.strerror}",
            hint="it must be readable by you; chggen db stop, remove it and chggen db start "
            "to make a new one",
        ) from None
    try:
        data = json.loads(text)
        credential = Credential(
            str(data["username"]), str(data["password"]), bool(data.get("provisioned"))
        )
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"the database credential file {path} is malformed",
            hint="chggen db stop, remove the file and chggen db start to make a new one",
        ) from None
    if path.stat().st_mode & 0o077:
        path.chmod(FILE_MODE)
    return credential


def write_credential(data_dir: Path, credential: Credential) -> None:
    """Write ``credential`` atomically, created with mode 0600 (never readable by others)."""
    path = credentials_path(data_dir)
    tmp = path.with_suffix(".json.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w") as out:
        json.dump(
            {
                "username": credential.username,
                "password": credential.password,
                "provisioned": credential.provisioned,
            },
            out,
        )
    os.replace(tmp, path)


def new_credential() -> Credential:
    """A fresh credential for the owner: 256 random bits, URL-safe."""
    return Credential(OWNER, secrets.token_urlsafe(32))
