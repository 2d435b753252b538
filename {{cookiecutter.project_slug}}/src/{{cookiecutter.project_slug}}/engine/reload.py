"""Development mode, `python -m <package> --reload`: the service in a child process, restarted when your files change.

Watched: your part of the service package (`wrappers/`, `llm.py`, `streaming.py`, any module of yours beside them;
not `engine/`, which only `cruft update` changes), the wrappers package wherever WRAPPERS_PACKAGE puts it, and
`.env` and `hypercorn.toml` in the working directory. Folders are watched one level each and listed again at every
restart: the working directory holds `.venv/` and `data/`, thousands of folders a recursive watch would cover, and an
editor that saves `.env` by replacing it would leave a watch on the file itself looking at the old one.

This process never loads `.env` into its environment: the real environment wins over `.env`, so a value loaded here
and inherited by the child would hide the next edit. Each child reads `.env` afresh.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import importlib.util
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from dotenv import dotenv_values
from watchfiles import Change, DefaultFilter, watch

from .settings import ENV_NAMES, SERVICE_PACKAGE, Settings

ENGINE_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = ENGINE_DIR.parent
# Files of the working directory that restart the service; anything else there (data/, logs) does not.
WORKDIR_FILES = frozenset({".env", "hypercorn.toml"})
# Seconds a child gets to stop after SIGTERM: above hypercorn.toml's graceful_timeout (10 s), so open streams end
# the service's way (a retryable error) rather than cut.
STOP_TIMEOUT_SECONDS = 15.0


def serve_with_reload(command: Sequence[str]) -> int:
    """Run `command` (the service, without --reload) and run it again after each change; return its last exit code.

    The child runs in a process group of its own, so Ctrl-C reaches this process alone, which tells the child once
    (SIGTERM: a graceful stop, as Ctrl-C would be, and one a shell cannot have set to be ignored). SIGTERM to this
    process does the same.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    logging.getLogger("watchfiles").setLevel(logging.ERROR)  # its notes on each change and on Ctrl-C: ours say more
    child = subprocess.Popen(command, process_group=0)
    try:
        while True:
            changes = next(iter(_watch()), None)
            if changes is None:  # Ctrl-C or SIGTERM
                break
            changed = _changed_files(changes)
            if not changed:
                continue  # only an editor's scratch file, made and removed
            print(f"{SERVICE_PACKAGE}: {', '.join(changed)} changed; restarting", file=sys.stderr, flush=True)
            _stop(child)
            child = subprocess.Popen(command, process_group=0)
    finally:
        _stop(child)
    return child.returncode or 0


def watched_folders(workdir: Path | None = None) -> list[Path]:
    """The folders whose files restart the service: the working directory, your part of the package, the wrappers."""
    workdir = workdir or Path.cwd()
    roots = [PACKAGE_DIR, *_wrappers_folders(workdir)]
    folders = [workdir.resolve()]
    for root in roots:
        for folder, subfolders, _ in os.walk(root):
            subfolders[:] = [name for name in subfolders if not _skipped(Path(folder) / name)]
            if Path(folder).resolve() not in folders:
                folders.append(Path(folder).resolve())
    return folders


def restarts_on(change: Change, path: str, workdir: Path | None = None) -> bool:
    """Whether a change to `path` restarts the service: a file of yours in the package, `.env`, `hypercorn.toml`."""
    file = Path(path)
    if file.parent == (workdir or Path.cwd()).resolve():
        return file.name in WORKDIR_FILES
    return not _skipped(file) and _DEFAULT_FILTER(change, path)


_DEFAULT_FILTER = DefaultFilter()  # editors' swap and backup files, bytecode, __pycache__


def _skipped(path: Path) -> bool:
    return path.resolve() == ENGINE_DIR or path.name in DefaultFilter.ignore_dirs or path.name.endswith(".egg-info")


def _wrappers_folders(workdir: Path) -> list[Path]:
    """Where the WRAPPERS_PACKAGE setting's package lives (read as the child will, `.env` included), if found."""
    name = os.environ.get(ENV_NAMES["wrappers_package"]) or dotenv_values(workdir / ".env").get(
        ENV_NAMES["wrappers_package"]
    )
    try:
        spec = importlib.util.find_spec(name or Settings.model_fields["wrappers_package"].default)
    except (ImportError, ValueError):
        return []  # the child says why it cannot load it
    return [Path(location) for location in (spec.submodule_search_locations or [])] if spec else []


def _watch() -> Iterator[set[tuple[Change, str]]]:
    workdir = Path.cwd().resolve()
    return watch(
        *watched_folders(workdir),
        watch_filter=lambda change, path: restarts_on(change, path, workdir),
        recursive=False,
        raise_interrupt=False,
    )


def _changed_files(changes: set[tuple[Change, str]]) -> list[str]:
    """The files that changed, as the user knows them; a file made and removed at once (an editor's probe) is none."""
    kinds: dict[str, set[Change]] = {}
    for change, path in changes:
        kinds.setdefault(path, set()).add(change)
    scratch = {Change.added, Change.deleted}
    return sorted(_shown(path) for path, seen in kinds.items() if not (scratch <= seen and not Path(path).exists()))


def _shown(path: str) -> str:
    file = Path(path)
    for base in (Path.cwd().resolve(), PACKAGE_DIR.parent):
        if file.is_relative_to(base):
            return str(file.relative_to(base))
    return path


def _stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the child is still there after STOP_TIMEOUT_SECONDS."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
