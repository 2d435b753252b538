"""`python -m <package>`: serve with ./hypercorn.toml; the HOST and PORT settings override its bind.

The template's file, updated by `cruft update`.
"""

import asyncio
import sys
from pathlib import Path

from hypercorn.asyncio import serve
from hypercorn.config import Config

from .engine.startup import prepare_process

prepare_process()  # .env and the metrics directory, before the engine imports Haystack and prometheus-client

from .engine.app import create_app  # noqa: E402
from .engine.settings import Settings, SettingsError  # noqa: E402

DEFAULT_BIND = "127.0.0.1:1416"


def main() -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        sys.exit(str(error))
    config_file = Path("hypercorn.toml")
    config = Config.from_toml(config_file) if config_file.exists() else Config()
    if not config_file.exists():
        config.bind = [DEFAULT_BIND]
    if settings.host or settings.port:
        default_host, _, default_port = config.bind[0].rpartition(":")
        config.bind = [f"{settings.host or default_host}:{settings.port or default_port}"]
    asyncio.run(serve(create_app(settings), config))


if __name__ == "__main__":
    main()
