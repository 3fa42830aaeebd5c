"""Processes for the scenarios: pinned servers, their CPU time and RSS, private databases."""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from importlib import metadata
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CPUS = os.cpu_count() or 1
SERVER_CPU = 0
CLIENT_CPU = 1 if CPUS > 1 else 0


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pin_self(cpu: int = CLIENT_CPU) -> None:
    if hasattr(os, "sched_setaffinity") and CPUS > 1:
        os.sched_setaffinity(0, {cpu})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinned(cmd: list[str], cpu: int | None) -> list[str]:
    if os.environ.get("BENCH_NO_PIN"):  # python -m bench ... --no-pin: servers float too
        return cmd
    if CPUS > 1 and shutil.which("taskset"):
        # No core given means every core: without saying so the server would inherit the client's
        # own pinning (pin_self), and all its workers would share the client's one core.
        return ["taskset", "-c", str(cpu) if cpu is not None else f"0-{CPUS - 1}", *cmd]
    return cmd


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    user, system = cpu_user_system(pid)
    return user + system


def cpu_user_system(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process in seconds, from /proc: Python and C, and the kernel's share."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its live descendants (uvicorn's worker processes)."""
    return sum(tree_cpu_by_process(pid).values())


def tree_cpu_by_process(pid: int) -> dict[int, float]:
    """CPU seconds of a process and of each of its live descendants, by pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out: dict[int, float] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            out[p] = cpu_seconds(p)
        except OSError:
            continue
        todo.extend(children.get(p, []))
    return out


def memory_snapshot(pid: int) -> Path | None:
    """With BENCH_TRACEMALLOC set: have the server write its next snapshot (bench/memory.py)."""
    out = os.environ.get("BENCH_TRACEMALLOC")
    if not out:
        return None
    n = len(list(Path(out).glob("*.snap"))) if Path(out).is_dir() else 0
    os.kill(pid, signal.SIGUSR1)
    done = Path(out) / f"{n}.done"
    deadline = time.monotonic() + 300
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return Path(out) / f"{n}.snap"


def named_cpu_seconds(name: str) -> float:
    """CPU seconds of every live process whose command name is ``name`` (e.g. the PostgreSQL
    backends serving this machine), to show where a scenario's time went besides the server."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == name:
                total += cpu_seconds(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return total


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Proc:
    """A child process (pinned to ``cpu``), stopped on exit of the ``with`` block."""

    def __init__(
        self,
        cmd: list[str],
        *,
        env: dict[str, str] | None = None,
        cpu: int | None = SERVER_CPU,
        log: Path | None = None,
        root: Path = ROOT,
    ) -> None:
        self.cmd = _pinned(cmd, cpu)
        self.root = root  # the source tree it runs from (python -m bench rest-ab: another revision)
        self.env = {**os.environ, "PYTHONPATH": str(root), **(env or {})}
        self.log = log or Path(tempfile.mkstemp(prefix="bench-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self.profiler: subprocess.Popen[bytes] | None = None

    def profile(self, out: Path) -> None:
        """Sample this process (and its children) with py-spy until :meth:`stop`; collapsed stacks."""
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.profiler = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(self.pid),
                "--subprocesses",
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Proc:
        out = open(self.log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, cwd=str(self.root), stdout=out, stderr=out, preexec_fn=raise_nofile
        )
        return self

    def stop(self) -> None:
        if self.profiler is not None and self.profiler.poll() is None:
            self.profiler.send_signal(signal.SIGINT)
            try:
                self.profiler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.profiler.kill()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def wait_port(port: int, proc: Proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"process exited; log:\n{proc.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open; log:\n{proc.tail()}")


def baseline_server(cpu: int | None = SERVER_CPU) -> tuple[Proc, int]:
    port = free_port()
    proc = Proc([sys.executable, "-m", "bench.baseline_server", str(port)], cpu=cpu).start()
    wait_port(port, proc)
    return proc, port


BENCH_ENV = {
    "LOG_LEVEL": "WARNING",
    "RATE_LIMIT_PER_MINUTE": "10000000",
    "AUTH_RATE_LIMIT_PER_MINUTE": "10000000",
    "PASSWORD_MIN_LENGTH": "10",
}


def corkboard_server(
    env: dict[str, str] | None = None,
    *,
    workers: int = 1,
    cpu: int | None = SERVER_CPU,
    port: int | None = None,
    root: Path = ROOT,
    ready_timeout: float = 60,
) -> tuple[Proc, str]:
    """A real ``corkboard serve`` process, run from the tree ``root``; SQLite in a temp dir unless
    ``env`` names a database."""
    port = port or free_port()
    data_dir = tempfile.mkdtemp(prefix="corkboard-bench-")
    full = {
        **BENCH_ENV,
        "DATA_DIR": data_dir,
        "SECRET_KEY": "bench-secret-" + uuid.uuid4().hex,
        **(env or {}),
    }
    # BENCH_TRACEMALLOC (python -m bench idle --tracemalloc DIR): the server traces its allocations
    main = ["bench.memory", "serve"] if os.environ.get("BENCH_TRACEMALLOC") else ["server", "serve"]
    proc = Proc(
        [sys.executable, "-m", *main, "--port", str(port), "--workers", str(workers)],
        env=full,
        cpu=cpu,
        root=root,
    ).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"corkboard serve exited; log:\n{proc.tail()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                profile_dir = os.environ.get("BENCH_PROFILE")
                if profile_dir:
                    Path(profile_dir).mkdir(parents=True, exist_ok=True)
                    proc.profile(Path(profile_dir) / f"server-{proc.pid}.raw")
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"corkboard serve did not become healthy; log:\n{proc.tail()}")


PG_ADMIN = os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class PrivateDatabase:
    """A fresh PostgreSQL database migrated by the tree ``root``, dropped on exit (``async with``)."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root

    async def __aenter__(self) -> str:
        self.name = f"corkboard_bench_{uuid.uuid4().hex[:12]}"
        await _pg(f'CREATE DATABASE "{self.name}"')
        self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.name
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server",
            "migrate",
            cwd=str(self.root),
            env={**os.environ, "PYTHONPATH": str(self.root), "DATABASE_URL": self.url},
            stdout=subprocess.DEVNULL,
        )
        if await proc.wait() != 0:
            raise RuntimeError("corkboard migrate failed")
        return self.url

    async def __aexit__(self, *exc: object) -> None:
        await _pg(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def machine() -> dict[str, str]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "-"

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": str(CPUS),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        **{name: version(name) for name in ("websockets", "uvicorn", "litestar", "msgspec", "uvloop")},
    }
