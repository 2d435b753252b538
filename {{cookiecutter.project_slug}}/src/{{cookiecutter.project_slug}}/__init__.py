"""Haystack pipelines and agents behind the OpenAI API: `create_app()` builds the Quart app."""

import logging

from quart import Quart

from .blueprints import chat, models, responses, status
from .errors import register_error_handlers
from .registry import load_wrappers
from .response_store import ResponseStore
from .runner import Runner
from .settings import Settings


def configure_logging(level: str) -> None:
    """One log format for the service; Haystack's per-component lines only when debugging."""
    level = level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("haystack").setLevel(level if level == "DEBUG" else "WARNING")
    # A run stopped because its client left is a pipeline failure to Haystack, which then warns that it
    # cannot serialise the streaming callback into its (unsaved) snapshot: noise on every disconnect.
    logging.getLogger("haystack.utils.base_serialization").setLevel(level if level == "DEBUG" else "ERROR")


def create_app(settings: Settings | None = None) -> Quart:
    """Build the app; wrappers are loaded (and their setup() run) when serving starts."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)

    app = Quart(__name__)
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # keep the OpenAI field order
    for blueprint in (models.blueprint, chat.blueprint, responses.blueprint, status.blueprint):
        app.register_blueprint(blueprint)
    register_error_handlers(app)

    @app.before_serving
    async def start() -> None:
        app.extensions["runner"] = Runner(settings.thread_pool_size)
        app.extensions["response_store"] = ResponseStore(settings.responses_store_size)
        app.extensions["registry"] = await load_wrappers(settings.wrappers_package)

    @app.after_serving
    async def stop() -> None:
        app.extensions["runner"].shutdown()

    return app


__all__ = ["Settings", "create_app"]
