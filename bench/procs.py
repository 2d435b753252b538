"""Starting, watching and stopping the processes a benchmark run needs.

Each server starts in a session of its own, so it and whatever it spawns (hypercorn runs its worker
in a child process) form one process group: `stop()` signals the process it started, waits, then
kills what is left of that group. Every process started is remembered, and `stop_all()` runs from
the harness's `finally`, on Ctrl-C too. Memory and CPU are read from /proc for the whole tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

_started: list[Proc] = []


def upstream_script(project: Path) -> Path:
    """The scripted upstream LLM of a baked project: in the engine's tests (tests/engine/) since they moved
    there, in tests/ before (a `--baseline` from before; the harness starts the working tree's)."""
    moved = project / "tests" / "engine" / "upstream.py"
    return moved if moved.exists() else project / "tests" / "upstream.py"


def free_port() -> int:
    """A port nobody listens on right now (loopback only)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Proc:
    """One server process: its command, environment and log file, and the moment it was started."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        log_path: Path,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
        log.flush()
        self.started_at = time.perf_counter()
        try:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        _started.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (or its `stop_signal`) to the process, `timeout` seconds to exit, then SIGKILL to its group."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # Whatever it spawned and left behind (or the process itself, if it ignored SIGTERM).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        if self in _started:
            _started.remove(self)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_all() -> None:
    """Stop every process this harness started and has not stopped yet, newest first."""
    for proc in reversed(list(_started)):
        proc.stop(timeout=5.0)


# ---- /proc ---------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after its closing one.
    return raw[raw.rfind(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def rss(pid: int) -> int:
    """Resident memory of one process, in bytes (0 when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


def tree_rss(root: int) -> int:
    """Resident memory of the process tree, in bytes."""
    return sum(rss(pid) for pid in process_tree(root))


def largest_rss(root: int) -> int:
    """Resident memory of the tree's largest process (for hypercorn: the worker, without its supervisor)."""
    return max((rss(pid) for pid in process_tree(root)), default=0)


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of the tree."""
    total = 0
    for pid in process_tree(root):
        if (fields := _stat_fields(pid)) is not None:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def listen_overflows() -> int:
    """Connections the kernel dropped because a listener's accept queue was full (system-wide counter)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenOverflows", 0))
    return 0


class Watch:
    """Samples a process tree's RSS in a thread while a measurement runs; notes the CPU and wall time it took."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root = root
        self.interval = interval
        self.peak_rss = 0
        self.peak_largest_rss = 0
        self.cpu = 0.0
        self.wall = 0.0
        self.listen_overflows = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name=f"watch-{root}", daemon=True)
        self._cpu_start = 0.0

    def __enter__(self) -> Watch:
        self._cpu_start = tree_cpu(self.root)
        self.listen_overflows = listen_overflows()
        self.wall = time.perf_counter()
        self._sample_once()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample_once()
        self.cpu = tree_cpu(self.root) - self._cpu_start
        self.wall = time.perf_counter() - self.wall
        self.listen_overflows = listen_overflows() - self.listen_overflows

    def _sample_once(self) -> None:
        sizes = [rss(pid) for pid in process_tree(self.root)]
        self.peak_rss = max(self.peak_rss, sum(sizes))
        self.peak_largest_rss = max(self.peak_largest_rss, max(sizes, default=0))

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample_once()
