"""What a process does once, before the engine is imported: the entry points call `prepare_process()` first.

The template's file, updated by `cruft update`. Importing the engine has no such effects: a notebook or a unit
test that imports a module of it reads no `.env` and creates no directory.
"""

from .observability.metrics_dir import share_metrics_between_workers
from .settings import load_env_file


def prepare_process() -> None:
    """Load `.env`, then choose where this process keeps its metrics.

    Both must come before the engine imports Haystack (which reads HAYSTACK_* settings once, at import) and
    prometheus-client (which picks where values live, at import).
    """
    load_env_file()
    share_metrics_between_workers()
