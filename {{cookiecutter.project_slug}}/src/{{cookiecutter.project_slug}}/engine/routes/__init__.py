"""The routes: the Quart blueprints, one per API. Only routes live here; what they parse is in `parsing/`.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""
