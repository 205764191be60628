"""A one-node SLURM cluster on this machine, for the SLURM integration test (tests/test_slurm.py).

Our own setup, written from the SLURM 22.05 man pages (slurm.conf(5), slurmctld(8), slurmd(8))
and munged(8): this host is controller and only compute node, reached on 127.0.0.1 at two
free ports, so a system SLURM (if any) is never touched. Everything lives in one private
directory: slurm.conf, state, spool, logs, the munge key and socket. munged, slurmctld and
slurmd run in the foreground as children of the test process, so stopping them is stopping
our own processes. Client commands find the cluster through ``SLURM_CONF`` (see ``env``), but
the plugin's job step drops every ``SLURM_*`` variable before its inner ``srun``, which then reads
SLURM's default path: so /etc/slurm/slurm.conf is made a symlink to our file while the cluster
runs (never replacing a real file there: that is a system SLURM, and we stop with an error).

No accounting database: ``sacct`` has nothing to read, so Snakemake's SLURM executor must query
job states with ``squeue`` (kept visible for ``MinJobAge`` seconds after a job ends). Finished
jobs are recorded by ``jobcomp/filetxt`` in ``jobcomp.log``: the test's proof that jobs ran.
Needs root (the daemons, apt-get); any missing piece raises ``ClusterError`` naming it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from apt_packages import apt_install

PACKAGES = ("slurm-wlm", "munge")
PROGRAMS = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")
SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
PARTITION = "ci"
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")  # where srun looks without SLURM_CONF
ROOT_PREFIX = "adaptivemix-slurm-"
MIN_JOB_AGE_S = 300  # how long squeue still shows a finished job (the SLURM default)


class ClusterError(RuntimeError):
    """The cluster could not be installed or started; the message says what and why."""


@dataclass
class Cluster:
    """A started one-node cluster: its directory, config file, node name and daemons."""

    root: Path
    node: str
    cpus: int
    daemons: list[subprocess.Popen] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def jobcomp(self) -> Path:
        return self.root / "jobcomp.log"

    def env(self) -> dict[str, str]:
        """This process's environment plus SLURM_CONF and the sbin directories on PATH."""
        path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    def run(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(
            [which(command[0]), *command[1:]],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def logs(self, tail: int = 2000) -> str:
        """The end of every daemon log, for error messages."""
        parts = []
        for name in ("munged.out", "slurmctld.log", "slurmd.log"):
            path = self.root / name
            text = path.read_text(errors="replace")[-tail:] if path.exists() else "(none)"
            parts.append(f"--- {name} ---\n{text}")
        return "\n".join(parts)


def which(program: str) -> str:
    """The program's path, also looking in the sbin directories (root's daemons live there)."""
    path = shutil.which(program, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))
    if path is None:
        raise ClusterError(f"program {program!r} not found on PATH or in {SBIN}")
    return path


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p, path=os.pathsep.join(SBIN)) is None]


def ensure_installed() -> None:
    """Install slurm-wlm and munge with apt-get unless all their programs are present."""
    missing = missing_programs()
    if not missing:
        return
    apt_install(PACKAGES, ClusterError)
    if still_missing := missing_programs():
        raise ClusterError(f"after installing {PACKAGES}, still missing: {still_missing}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def real_memory_mb() -> int:
    """95% of MemTotal (/proc/meminfo): slurmd drains a node that has less than configured."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 95 // (100 * 1024)
    raise ClusterError("no MemTotal line in /proc/meminfo")


def slurm_conf(root: Path, node: str, cpus: int, memory_mb: int) -> str:
    """A minimal slurm.conf: one node, one default partition, no accounting storage."""
    ctld_port, slurmd_port = free_port(), free_port()
    return f"""\
ClusterName=adaptivemix-ci
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.log
MinJobAge={MIN_JOB_AGE_S}
ReturnToService=2
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def make_root() -> Path:
    """A private directory under /tmp that munged accepts (every component world-executable)."""
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir="/tmp"))
    for sub in ("munge", "state", "spool"):
        (root / sub).mkdir()
    for path in (root, root / "munge"):
        path.chmod(0o755)
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    return root


def link_default_conf(cluster: Cluster) -> None:
    """Point /etc/slurm/slurm.conf at our slurm.conf, replacing only a link a past run left."""
    if DEFAULT_CONF.is_symlink() and ROOT_PREFIX in str(DEFAULT_CONF.readlink()):
        DEFAULT_CONF.unlink()
    if DEFAULT_CONF.exists() or DEFAULT_CONF.is_symlink():
        raise ClusterError(
            f"{DEFAULT_CONF} already exists (a system SLURM configuration): this test will not"
            " replace it; run it on a machine without SLURM configured"
        )
    DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
    DEFAULT_CONF.symlink_to(cluster.conf)


def unlink_default_conf(cluster: Cluster) -> None:
    if DEFAULT_CONF.is_symlink() and DEFAULT_CONF.readlink() == cluster.conf:
        DEFAULT_CONF.unlink()


def start_daemon(cluster: Cluster, name: str, *args: str) -> None:
    with (cluster.root / f"{name}.out").open("w") as out:
        process = subprocess.Popen(
            [which(name), *args], stdout=out, stderr=subprocess.STDOUT, env=cluster.env()
        )
    cluster.daemons.append(process)


def wait_for(check, what: str, cluster: Cluster, timeout: float = 60) -> None:
    """Poll ``check()`` until true; on timeout (or a daemon exiting) raise with the logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if dead := [p.args[0] for p in cluster.daemons if p.poll() is not None]:
            raise ClusterError(f"{dead} exited while waiting for {what}\n{cluster.logs()}")
        time.sleep(0.5)
    raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}\n{cluster.logs()}")


def start_munge(cluster: Cluster) -> None:
    root = cluster.root
    start_daemon(
        cluster, "munged", "--foreground", f"--socket={root}/munge/munge.socket",
        f"--key-file={root}/munge.key", f"--log-file={root}/munged.log",
        f"--pid-file={root}/munged.pid", f"--seed-file={root}/munged.seed",
    )  # fmt: skip
    wait_for(lambda: (root / "munge/munge.socket").exists(), "the munge socket", cluster)


def node_state(cluster: Cluster) -> str:
    result = cluster.run("sinfo", "--noheader", "--Node", "--format=%t", "--nodes", cluster.node)
    return result.stdout.strip() if result.returncode == 0 else ""


def start_cluster() -> Cluster:
    """Install if needed, write slurm.conf, start munged, slurmctld and slurmd; wait for idle."""
    if os.geteuid() != 0:
        raise ClusterError("starting SLURM daemons needs root (this test runs as root in CI)")
    ensure_installed()
    node = socket.gethostname().split(".")[0]
    cluster = Cluster(root=make_root(), node=node, cpus=len(os.sched_getaffinity(0)))
    cluster.conf.write_text(slurm_conf(cluster.root, node, cluster.cpus, real_memory_mb()))
    try:
        link_default_conf(cluster)
        start_munge(cluster)
        start_daemon(cluster, "slurmctld", "-D", "-c", "-f", str(cluster.conf))
        start_daemon(cluster, "slurmd", "-D", "-N", node, "-f", str(cluster.conf))
        wait_for(lambda: node_state(cluster) == "idle", f"node {node} to be idle", cluster)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: Cluster, remove: bool = True) -> None:
    """Cancel our cluster's jobs, stop its daemons (ours, by process), delete its directory."""
    if any(p.poll() is None for p in cluster.daemons):
        cluster.run("scancel", "--full", "--partition", PARTITION)
    for process in reversed(cluster.daemons):  # slurmd, slurmctld, then munged
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
    cluster.daemons.clear()
    unlink_default_conf(cluster)
    if remove:
        shutil.rmtree(cluster.root, ignore_errors=True)
