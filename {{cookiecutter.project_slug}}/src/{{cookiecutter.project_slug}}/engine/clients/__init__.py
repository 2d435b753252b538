"""Client adapters: what the service does differently for one kind of client (Open WebUI), and sources.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""
