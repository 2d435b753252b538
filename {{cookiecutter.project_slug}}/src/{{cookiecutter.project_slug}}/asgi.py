"""The ASGI entry point: `hypercorn <package>.asgi:app`. The template's file, updated by `cruft update`."""

from .engine.startup import prepare_process

prepare_process()  # .env and the metrics directory, before the engine imports Haystack and prometheus-client

from .engine.app import create_app  # noqa: E402

app = create_app()
