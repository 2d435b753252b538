"""Request parsing: request bodies, and OpenAI messages and items turned into what Haystack takes.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""
