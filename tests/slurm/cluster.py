"""A one-node SLURM cluster on localhost, in a temporary directory, for the tests.

munged and slurmctld/slurmd run as root with every file (munge key and socket,
slurm.conf, state, spool, logs, pid files) under one directory and their own ports,
so nothing in /etc is touched and a machine's own SLURM or munge (if any) is left
alone. The settings are the ones found to work with Debian's slurm-wlm 22.05 (see
the design notes, "Multi-user machines and job managers").
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")


def missing_binaries() -> list[str]:
    """SLURM/munge programs not on PATH (or in /usr/sbin)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return [b for b in BINARIES if shutil.which(b, path=path) is None]


def skip_reason() -> str | None:
    """Why the SLURM tests cannot run here, or None."""
    missing = missing_binaries()
    if missing:
        return (
            f"SLURM/munge not installed ({', '.join(missing)} missing): "
            "apt-get install slurm-wlm munge (as .ci/run does)"
        )
    if os.geteuid() != 0:
        return "a local SLURM cluster for the tests needs root (slurmd runs jobs as their user)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 1024


@dataclass
class LocalSlurm:
    """A running one-node cluster; ``env`` is what SLURM commands need (SLURM_CONF)."""

    root: Path
    node: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    pids: list[int] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        path = os.environ.get("PATH", "")
        for extra in ("/usr/sbin", "/sbin"):
            if extra not in path.split(os.pathsep):
                path += os.pathsep + extra
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    def start(self, timeout: float = 60.0) -> LocalSlurm:
        """Write the configuration, start munged, slurmctld and slurmd; wait for the node."""
        root = self.root
        for sub in ("munge", "state", "spool", "log", "run"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        socket_path = root / "munge" / "munge.socket"
        self._spawn(
            [
                "munged",
                "--force",  # as root: munged wants its own user otherwise
                f"--key-file={key}",
                f"--socket={socket_path}",
                f"--pid-file={root / 'run' / 'munged.pid'}",
                f"--log-file={root / 'log' / 'munged.log'}",
                f"--seed-file={root / 'munge' / 'munge.seed'}",
            ],
            pid_file=root / "run" / "munged.pid",
        )
        self.conf.write_text(self._slurm_conf(socket_path))
        self._spawn(["slurmctld"], pid_file=root / "run" / "slurmctld.pid")
        self._spawn(["slurmd"], pid_file=root / "run" / "slurmd.pid")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run(["sinfo", "-h", "-N", "-o", "%T"], check=False).stdout.strip()
            if state in ("idle", "mixed", "allocated"):
                return self
            time.sleep(0.5)
        raise RuntimeError(
            f"the test SLURM node did not come up (state {state!r}); logs in {root / 'log'}"
        )

    def _slurm_conf(self, munge_socket: Path) -> str:
        root = self.root
        memory = max(512, _memory_mb() - 1024)
        return f"""\
ClusterName=chggentest
SlurmctldHost={self.node}
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "run" / "slurmctld.pid"}
SlurmdPidFile={root / "run" / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
ReturnToService=2
# quick kills and short bookkeeping: the tests wait on them
KillWait=2
OverTimeLimit=0
MinJobAge=600
InactiveLimit=0
SlurmdTimeout=60
NodeName={self.node} CPUs={self.cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""

    def _spawn(self, argv: list[str], pid_file: Path, timeout: float = 20.0) -> None:
        """Start a daemon (it forks itself) and record its pid from its pid file."""
        subprocess.run(argv, env=self.env, check=True, capture_output=True, timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pid_file.exists() and pid_file.read_text().strip():
                self.pids.append(int(pid_file.read_text().split()[0]))
                return
            time.sleep(0.1)
        raise RuntimeError(f"{argv[0]} wrote no pid file {pid_file}")

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        """Run a SLURM command against this cluster."""
        return subprocess.run(
            argv, env=self.env, check=check, capture_output=True, text=True, timeout=60
        )

    def jobs(self) -> dict[str, str]:
        """``{job id: state}`` of the jobs SLURM still knows (finished ones for MinJobAge)."""
        out = self.run(["scontrol", "-o", "show", "job"], check=False).stdout
        jobs = {}
        for line in out.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if "JobId" in fields:
                jobs[fields["JobId"]] = fields.get("JobState", "")
        return jobs

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is pending or running; return whether that happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run(["squeue", "-h", "-o", "%i"], check=False).stdout.strip():
                return True
            time.sleep(1.0)
        return False

    def stop(self) -> None:
        """Cancel every job and stop the daemons (in reverse order)."""
        self.run(["scancel", "--full", "-u", "root"], check=False)
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        self.pids.clear()
