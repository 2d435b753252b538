"""HTTP plumbing around the routes: API keys, CORS, OpenAI error envelopes, clients that stop reading.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""
