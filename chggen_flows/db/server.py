"""The embedded MongoDB-wire-protocol server (SecantusDB) run as a background process.

SecantusDB is GPL-2.0-only, so chggen-flows never imports it: the ``db`` extra installs
its ``secantusd-py`` launcher and this module runs that as a separate process, with its
storage under ``<data_dir>/mongodb`` and its pid, host and port recorded in
``<data_dir>/server.json``. A file lock (``<data_dir>/server.lock``) serialises
start/stop, so concurrent ``chggen`` processes share one server; a state file whose
process is gone is detected and removed.

The server requires authentication (``--auth``) by default: on first start a user with
a random password is created (see :mod:`chggen_flows.db.credentials`) and every URI
this module hands out carries that credential, so callers connect as before. A data
directory from a version without authentication is upgraded on its next start: its
server is restarted with ``--auth``, the data kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from chggen_flows.db.credentials import (
    Credential,
    credentials_path,
    new_credential,
    read_credential,
    secure_data_dir,
    write_credential,
)
from chggen_flows.errors import ConfigError, DatabaseError

SERVER_EXECUTABLE = "secantusd-py"
LOOPBACK = "127.0.0.1"
# Start-up takes ~2-3 s on an idle 2-core machine; a loaded one can be much slower.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# How long a running server may take to answer ``ping`` before it counts as hung.
PING_TIMEOUT_S = 10.0
LOCK_TIMEOUT_S = START_TIMEOUT_S + STOP_TIMEOUT_S + 30.0
_INSTALL_HINT = (
    "install the embedded database with  pip install 'chggen-flows[db]'  "
    "or use an existing MongoDB server: set CHGGEN_MONGO_URI"
)


@dataclass(frozen=True)
class ServerInfo:
    """How to reach a running embedded server.

    Attributes
    ----------
    host, port
        Loopback address the server listens on.
    pid
        Process id of the server.
    uri
        Connection string (``directConnection=true``: the server is standalone). With
        authentication it holds the owner's password: print it through
        :func:`chggen_flows.settings.mask_uri` only.
    auth
        Whether the server requires authentication.
    note
        What :meth:`EmbeddedServer.start` changed that the user should hear of (the
        upgrade of a data directory to authentication), else None.
    """

    host: str
    port: int
    pid: int
    uri: str
    auth: bool = False
    note: str | None = None


def server_uri(host: str, port: int, credential: Credential | None = None) -> str:
    """Connection string of an embedded server at ``host:port`` (as ``credential``).

    ``directConnection``: the server runs ``--standalone``, not as a replica set.
    ``journal=true``: every acknowledged write is in the on-disk log, so it survives a
    crash or SIGKILL of the unattended background server (with mongod's default
    ``j: false`` the last ~0.1 s of writes are lost); about 7 ms per write, small next
    to the jobs that write (see docs/configuration.md).
    """
    if credential is None:
        return f"mongodb://{host}:{port}/?directConnection=true&journal=true"
    return (
        f"mongodb://{credential.userinfo()}{host}:{port}/"
        "?directConnection=true&journal=true&authSource=admin"
    )


def find_server_executable() -> Path:
    """The ``secantusd-py`` launcher next to the running Python (or on PATH).

    Raises
    ------
    DatabaseError
        When the ``db`` extra (SecantusDB) is not installed.
    """
    beside = Path(sys.executable).parent / SERVER_EXECUTABLE
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(SERVER_EXECUTABLE)
    if found:
        return Path(found)
    raise DatabaseError(
        "no MongoDB URI is configured and the embedded database server (SecantusDB, "
        f"command {SERVER_EXECUTABLE}) is not installed",
        hint=_INSTALL_HINT,
    )


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails (another process holds the port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def ping(uri: str, timeout_s: float = 2.0) -> bool:
    """Whether a MongoDB server answers ``ping`` at ``uri`` within ``timeout_s``."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    ms = int(timeout_s * 1000)
    client: MongoClient = MongoClient(
        uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms
    )
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


def _answering_pid(uri: str, timeout_s: float) -> int | None:
    """The pid the server at ``uri`` reports (``serverStatus``), or None if it is silent.

    Returns 0 when the server answers but withholds its status (``--auth``, and not our
    credential). Used to
    make sure the server that answers on a fresh port is the process just started,
    not another one that grabbed the port first.
    """
    from pymongo import MongoClient
    from pymongo.errors import OperationFailure, PyMongoError

    ms = int(timeout_s * 1000)
    client: MongoClient = MongoClient(
        uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms
    )
    try:
        return int(client.admin.command("serverStatus").get("pid", 0))
    except OperationFailure:
        return 0
    except PyMongoError:
        return None
    finally:
        client.close()


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (reaping it first if it is our exited child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:  # not our child: ask the kernel
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: the pid was reused
        return False
    # A zombie (exited, parent not reaping, e.g. a container's init) still "exists".
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no procfs (macOS), or it exited just now
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _is_server_process(pid: int, storage: Path) -> bool:
    """Whether ``pid`` is a SecantusDB server on ``storage`` (guards against pid reuse)."""
    if not _pid_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():  # no procfs (macOS): trust the live pid
        return True
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return any(SERVER_EXECUTABLE.encode() in a for a in args) and str(storage).encode() in args


def _accepting(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _signal(pid: int, sig: int) -> bool:
    """Send ``sig`` (and SIGCONT, so a stopped process acts on it); False if gone."""
    try:
        os.kill(pid, sig)
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        return False
    return True


def _terminate(pid: int, host: str, port: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop server ``pid`` listening on ``host:port``: SIGTERM, then SIGKILL if need be.

    SecantusDB shuts down from a SIGTERM handler that only runs in its main thread,
    and the kernel may hand the signal to another thread, where it goes unnoticed
    (seen after SIGSTOP/SIGCONT and, rarely, right after start-up). So while the
    server still accepts connections, i.e. its shutdown has not begun, the signal is
    sent again every few seconds. Writes are journaled, so the SIGKILL of last resort
    loses nothing acknowledged.
    """
    deadline = time.monotonic() + timeout_s
    resend_at = 0.0
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        now = time.monotonic()
        if now >= resend_at and (resend_at == 0.0 or _accepting(host, port)):
            if not _signal(pid, signal.SIGTERM):
                return
            resend_at = now + 3.0
        time.sleep(0.05)
    _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    raise DatabaseError(
        f"the embedded database server (pid {pid}) did not stop",
        hint=f"kill it by hand: kill -9 {pid}",
    )


class EmbeddedServer:
    """A SecantusDB server process owned by one data directory.

    Parameters
    ----------
    data_dir
        Directory for the server's storage (``mongodb/``), state file, lock and log.
    host
        Loopback address to listen on.
    port
        Port to listen on; None picks a free one. Ignored when a server already runs
        for ``data_dir`` (``start`` returns that one).
    auth
        Require SCRAM authentication (``--auth``, the default) with the credential kept
        in ``data_dir`` (created on first start; see
        :mod:`chggen_flows.db.credentials`). False runs an open server (tests, and
        benchmarks that measure the cost of authentication).

    Examples
    --------
    >>> server = EmbeddedServer(Path("/tmp/chggen-data"))  # doctest: +SKIP
    >>> info = server.start()  # doctest: +SKIP
    >>> info.uri  # doctest: +SKIP
    'mongodb://127.0.0.1:40123/?directConnection=true&journal=true'
    """

    def __init__(
        self,
        data_dir: Path,
        host: str = LOOPBACK,
        port: int | None = None,
        auth: bool = True,
    ) -> None:
        # Resolved: the path is matched against the server's command line, which must
        # not depend on the symlink or working directory a caller used.
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.host = host
        self.port = port
        self.auth = auth

    @property
    def storage_path(self) -> Path:
        """WiredTiger home of the server."""
        return self.data_dir / "mongodb"

    @property
    def state_file(self) -> Path:
        """JSON file recording pid, host and port of the running server."""
        return self.data_dir / "server.json"

    @property
    def log_file(self) -> Path:
        """The server's stdout/stderr."""
        return self.data_dir / "mongodb.log"

    def start(self) -> ServerInfo:
        """Start the server unless it already runs; return how to reach it.

        Idempotent and safe to call from several processes at once: they share one
        server. A stale state file (dead process) is removed first.

        Raises
        ------
        ConfigError
            When the data directory cannot be created or written.
        DatabaseError
            When SecantusDB is not installed, the port is taken, the storage is held
            by another server, the server does not come up in time, or the recorded
            server runs but does not answer.
        """
        with self._locked():
            notes: list[str] = []
            if self.auth and secure_data_dir(self.data_dir) and self._has_data():
                notes.append(f"made the data directory {self.data_dir} private (mode 0700)")
            info = self._running()
            if info is not None:
                if info.auth or not self.auth:
                    return info
                # Started by a version without authentication: restart it with --auth.
                _terminate(info.pid, info.host, info.port)
                self.state_file.unlink(missing_ok=True)
                notes.append(
                    f"stopped the embedded database server (pid {info.pid}), which "
                    "accepted connections from any local user"
                )
            executable = find_server_executable()
            credential = None
            provisioned_now = False
            if self.auth:
                credential = read_credential(self.data_dir)
                if credential is None or not credential.provisioned:
                    provisioned_now = True
                    if self._has_data():
                        notes.append(
                            "upgraded the data directory to an authenticated server: "
                            f"password in {credentials_path(self.data_dir)} (mode 0600), "
                            "all data kept"
                        )
                    credential = self._provision(executable, credential)
            info = self._launch_on_port(executable, credential)
            if provisioned_now:
                _drop_other_users(info.uri, credential)
            if notes:
                info = ServerInfo(**{**asdict(info), "note": "; ".join(notes)})
            return info

    def _launch_on_port(self, executable: Path, credential: Credential | None) -> ServerInfo:
        if self.port is not None:
            if port_in_use(self.host, self.port):
                raise self._port_in_use_error(self.port)
            return self._launch(executable, self.port, credential)
        # A free port can be taken between probing and binding: try again.
        for _ in range(2):
            with contextlib.suppress(_PortTaken):
                return self._launch(executable, free_port(self.host), credential)
        return self._launch(executable, free_port(self.host), credential)

    def _has_data(self) -> bool:
        """Whether the storage holds a database already (an upgrade, not a first start)."""
        return self.storage_path.is_dir() and any(self.storage_path.iterdir())

    def _provision(self, executable: Path, credential: Credential | None) -> Credential:
        """Create the owner user in the storage; return the credential, now provisioned.

        The user can only be created by a server without ``--auth``: one runs on a
        fresh port for the second this takes. Anyone who created a user of their own
        in that window loses it once the authenticated server is up
        (:func:`_drop_other_users`).
        """
        from pymongo import MongoClient

        credential = credential or new_credential()
        write_credential(self.data_dir, credential)  # before the user: never lost
        info = self._launch_on_port_unrecorded(executable)
        try:
            client: MongoClient = MongoClient(info.uri, serverSelectionTimeoutMS=10_000)
            try:
                users = client.admin.command("usersInfo", credential.username)["users"]
                command = "updateUser" if users else "createUser"
                client.admin.command(
                    command, credential.username, pwd=credential.password, roles=["root"]
                )
            finally:
                client.close()
        finally:
            _terminate(info.pid, info.host, info.port)
        credential = Credential(credential.username, credential.password, provisioned=True)
        write_credential(self.data_dir, credential)
        return credential

    def _launch_on_port_unrecorded(self, executable: Path) -> ServerInfo:
        for _ in range(2):
            with contextlib.suppress(_PortTaken):
                return self._launch(executable, free_port(self.host), None, record=False)
        return self._launch(executable, free_port(self.host), None, record=False)

    def stop(self) -> bool:
        """Stop the server; return whether one was running.

        Raises
        ------
        DatabaseError
            When the process does not exit even after SIGKILL.
        """
        with self._locked():
            state = self._read_state()
            if state is None:
                return False
            pid = int(state["pid"])
            running = _is_server_process(pid, self.storage_path)
            if running:
                _terminate(pid, str(state["host"]), int(state["port"]))
            self.state_file.unlink(missing_ok=True)
            return running

    def status(self) -> ServerInfo | None:
        """The running server, or None (a stale state file is removed).

        Raises
        ------
        DatabaseError
            When the recorded server process runs but does not answer.
        """
        if not self.state_file.exists():
            return None
        with self._locked():
            return self._running()

    # -- internals ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.data_dir / "server.lock", timeout=LOCK_TIMEOUT_S)
            with lock:
                yield
        except Timeout:
            raise DatabaseError(
                f"another chggen process holds {self.data_dir / 'server.lock'} "
                f"for more than {LOCK_TIMEOUT_S:.0f} s",
                hint="wait for it to finish, or remove the lock file if no chggen runs",
            ) from None
        except (PermissionError, FileExistsError, NotADirectoryError) as exc:
            raise ConfigError(
                f"data directory {self.data_dir} is not a writable directory ({exc.strerror})",
                hint="set CHGGEN_DATA_DIR (or data_dir in the YAML file) to a writable directory",
            ) from None

    def _read_state(self) -> dict | None:
        try:
            state = json.loads(self.state_file.read_text())
            int(state["pid"]), int(state["port"]), str(state["host"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            # Corrupt (e.g. hand-edited): nothing can be trusted in it.
            self.state_file.unlink(missing_ok=True)
            return None
        return state

    def _running(self) -> ServerInfo | None:
        """The server recorded in the state file if it is alive; clean a stale file.

        A live server process that does not answer is an error, not something to kill
        behind the user's back: on a loaded machine it may only be slow, and workers
        may be using it.
        """
        state = self._read_state()
        if state is None:
            return None
        pid, host, port = int(state["pid"]), str(state["host"]), int(state["port"])
        if not _is_server_process(pid, self.storage_path):
            self.state_file.unlink(missing_ok=True)
            return None
        auth = bool(state.get("auth", False))
        credential = read_credential(self.data_dir) if auth else None
        if auth and credential is None:
            raise DatabaseError(
                f"the embedded database server (pid {pid}) requires authentication but "
                f"its credential {credentials_path(self.data_dir)} is gone",
                hint="stop it (chggen db stop) and start it again: a new credential is made",
            )
        uri = server_uri(host, port, credential)
        if not ping(uri, timeout_s=PING_TIMEOUT_S):
            raise DatabaseError(
                f"the embedded database server (pid {pid}, {server_uri(host, port)}) runs "
                "but does not "
                f"answer within {PING_TIMEOUT_S:.0f} s",
                hint=f"if the machine is not just overloaded, restart it: chggen db stop && "
                f"chggen db start (its log: {self.log_file})",
            )
        return ServerInfo(host=host, port=port, pid=pid, uri=uri, auth=auth)

    def _launch(
        self,
        executable: Path,
        port: int,
        credential: Credential | None,
        record: bool = True,
    ) -> ServerInfo:
        """Start the process (``--auth`` with a credential), wait until it answers, then
        record it in the state file (unless ``record`` is False)."""
        self.storage_path.mkdir(parents=True, exist_ok=True)
        # An empty config file turns off SecantusDB's auto-discovery of
        # ./secantusd.toml and ~/.secantus/secantusd.toml: only our flags count.
        config = self.data_dir / "secantusd.toml"
        if not config.exists():
            config.write_text("# chggen-flows passes every setting as a flag.\n")
        cmd = [
            str(executable),
            "--config",
            str(config),
            "--host",
            self.host,
            "--port",
            str(port),
            "--storage-path",
            str(self.storage_path),
            "--standalone",
            "--log-level",
            "WARNING",
        ]
        if credential is not None:
            cmd.append("--auth")
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,  # survives the chggen process; no terminal signals
                close_fds=True,
            )
        uri = server_uri(self.host, port, credential)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._launch_failed(port, log_start)
            answering = _answering_pid(uri, timeout_s=0.5)
            # 0 (status withheld) is never ours: our server either runs open or knows
            # the credential in ``uri``; it is someone else's server with --auth.
            if answering == proc.pid:
                break
            if answering is not None:  # someone else's server took the port first
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=START_TIMEOUT_S)  # ours fails to bind and exits
                if proc.poll() is None:
                    _terminate(proc.pid, self.host, port)
                self._launch_failed(port, log_start)
            time.sleep(0.1)
        else:
            _terminate(proc.pid, self.host, port)
            raise DatabaseError(
                f"the embedded database server did not answer within {START_TIMEOUT_S:.0f} s",
                hint=f"see its log {self.log_file}",
            )
        info = ServerInfo(
            host=self.host, port=port, pid=proc.pid, uri=uri, auth=credential is not None
        )
        if record:
            tmp = self.state_file.with_suffix(".json.tmp")
            state = {"host": info.host, "port": port, "pid": proc.pid, "auth": info.auth}
            tmp.write_text(json.dumps({**state, "storage": str(self.storage_path)}))
            os.replace(tmp, self.state_file)
        return info

    def _port_in_use_error(self, port: int) -> DatabaseError:
        return DatabaseError(
            f"port {port} on {self.host} is already in use",
            hint="choose another port (chggen db start --port N) or leave it out to pick "
            "a free one",
        )

    def _launch_failed(self, port: int, log_start: int) -> None:
        """Raise the error that explains why the server process exited at start-up."""
        with open(self.log_file, "rb") as log:
            log.seek(log_start)
            text = log.read().decode(errors="replace")
        if "Address already in use" in text:
            raise _PortTaken(port) if self.port is None else self._port_in_use_error(port)
        if "already being managed by another process" in text:
            raise DatabaseError(
                f"the database storage {self.storage_path} is in use by another server "
                "process not recorded in server.json",
                hint=f"stop that process (see: fuser {self.storage_path}/WiredTiger.lock)",
            )
        last = text.strip().splitlines()[-1] if text.strip() else "no output"
        raise DatabaseError(
            f"the embedded database server exited at start-up: {last}",
            hint=f"see its log {self.log_file}",
        )


def _drop_other_users(uri: str, credential: Credential) -> None:
    """Drop every user but the owner, through the authenticated server at ``uri``.

    Run right after provisioning: whoever created a user of their own while the server
    ran without ``--auth`` loses it before anything of ours uses the server.
    (SecantusDB's ``usersInfo`` has no ``forAllDBs``: each database is asked.)
    """
    from pymongo import MongoClient

    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=10_000)
    try:
        for name in {"admin", *client.list_database_names()}:
            for user in client[name].command("usersInfo", 1)["users"]:
                if (user["user"], name) != (credential.username, "admin"):
                    client[name].command("dropUser", user["user"])
    finally:
        client.close()


class _PortTaken(DatabaseError):
    """The automatically chosen port was grabbed by another process before the server."""

    def __init__(self, port: int) -> None:
        super().__init__(
            f"port {port} was taken while the server started", hint="run the command again"
        )
