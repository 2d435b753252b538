"""The ASGI entry point: `hypercorn <package>.asgi:app`."""

from . import create_app

app = create_app()
