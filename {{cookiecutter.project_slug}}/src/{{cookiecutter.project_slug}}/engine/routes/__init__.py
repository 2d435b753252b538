"""The routes: the Quart blueprints, one per API. Only routes live here; what they parse is in `parsing/`."""
