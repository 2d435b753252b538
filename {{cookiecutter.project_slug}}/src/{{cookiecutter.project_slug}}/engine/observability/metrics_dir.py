"""Where the metrics of several hypercorn workers meet, so `GET /metrics` on any of them counts them all.

With `workers` > 0 in hypercorn.toml, each worker is a process of its own, and a scrape reaches one of them.
prometheus-client then keeps every value in a file of a directory all workers share
(`PROMETHEUS_MULTIPROC_DIR`), and answers a scrape from all the files. It reads that variable once, when it is
imported, so `share_metrics_between_workers` runs before anything imports it.

The directory is `DATA_DIR/metrics/<supervisor pid>-<its start time>`: the same for the workers of one hypercorn,
new for the next one (a restarted container gets a new start time even if its PID is the same), and the
directories of hypercorns that are gone are removed. A PROMETHEUS_MULTIPROC_DIR you set yourself is used as it is
(then clearing it at each start is yours to do). With `workers = 0` there is one process and no directory.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import logging
import multiprocessing
import os
import shutil
import sys
from collections.abc import MutableMapping
from pathlib import Path

logger = logging.getLogger(__name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics_between_workers(environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """Point prometheus-client at the directory this process shares with its sibling workers; None when it has none.

    Reads METRICS and DATA_DIR from the environment: it runs before the settings are read, and only the hypercorn
    command starts workers, which always take their settings from there.
    """
    if environ.get(MULTIPROC_DIR):
        return Path(environ[MULTIPROC_DIR])
    if environ.get("METRICS") == "off" or multiprocessing.parent_process() is None:
        return None  # one process: its metrics stay in memory
    if "prometheus_client" in sys.modules:
        logger.warning("prometheus_client was imported before the service: each worker reports only its own metrics")
        return None
    metrics_root = Path(environ.get("DATA_DIR") or "data") / "metrics"
    remove_directories_of_stopped_servers(metrics_root)
    directory = metrics_root / server_id(os.getppid())
    directory.mkdir(parents=True, exist_ok=True)
    environ[MULTIPROC_DIR] = str(directory)
    return directory


def server_id(pid: int) -> str:
    """`<pid>-<start time>` of a process: unique among the processes a machine runs over time, unlike the PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return f"{pid}-0"  # no /proc (not Linux), or the process is gone
    # Field 22 of /proc/<pid>/stat is the start time; count from after the command name, which may hold spaces.
    return f"{pid}-{stat.rpartition(')')[2].split()[19]}"


def remove_directories_of_stopped_servers(metrics_root: Path) -> None:
    """Delete the directories whose hypercorn no longer runs: their counts belong to a past run."""
    if not metrics_root.is_dir():
        return
    for directory in metrics_root.iterdir():
        pid, _, _ = directory.name.partition("-")
        if pid.isdigit() and server_id(int(pid)) != directory.name:
            shutil.rmtree(directory, ignore_errors=True)
