"""`python -m <package>`: serve with ./hypercorn.toml; the HOST and PORT settings override its bind.

`python -m <package> --reload` serves the same way in a child process and restarts it when you edit your code or
`.env` (development: see `engine/reload.py`).

The template's file, updated by `cruft update`.
"""

import argparse
import asyncio
import sys
from pathlib import Path

from hypercorn.asyncio import serve
from hypercorn.config import Config, Sockets

from .engine.http.unsent_bytes import limit_unsent_bytes
from .engine.settings import Settings, SettingsError
from .engine.startup import prepare_process

DEFAULT_BIND = "127.0.0.1:1416"


class _Config(Config):
    """Hypercorn's config, whose sockets bound what a connection holds unsent (see `engine/http/unsent_bytes.py`).

    Here hypercorn creates them after the app started, so the app's own look at this process's sockets finds none.
    """

    max_unsent_bytes = 0

    def create_sockets(self) -> Sockets:
        sockets = super().create_sockets()
        limit_unsent_bytes([*sockets.secure_sockets, *sockets.insecure_sockets], self.max_unsent_bytes)
        return sockets


def main() -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description="Serve the models in wrappers/.")
    parser.add_argument(
        "--reload",
        action="store_true",
        help="restart when wrappers/, your other modules, .env or hypercorn.toml change",
    )
    if parser.parse_args().reload:
        from .engine.reload import serve_with_reload

        sys.exit(serve_with_reload([sys.executable, "-m", str(__package__)]))
    prepare_process()  # .env and the metrics directory, before the engine imports Haystack and prometheus-client
    from .engine.app import create_app

    try:
        settings = Settings.from_env()
    except SettingsError as error:
        sys.exit(str(error))
    config_file = Path("hypercorn.toml")
    config = _Config.from_toml(config_file) if config_file.exists() else _Config()
    assert isinstance(config, _Config)
    config.max_unsent_bytes = settings.max_unsent_bytes
    config.workers = 1  # this process serves (hypercorn.toml's `workers` is the hypercorn command's); no warning
    if not config_file.exists():
        config.bind = [DEFAULT_BIND]
    if settings.host or settings.port:
        default_host, _, default_port = config.bind[0].rpartition(":")
        config.bind = [f"{settings.host or default_host}:{settings.port or default_port}"]
    asyncio.run(serve(create_app(settings), config))


if __name__ == "__main__":
    main()
