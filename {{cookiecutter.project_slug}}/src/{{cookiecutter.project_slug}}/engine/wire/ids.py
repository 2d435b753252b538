"""Ids for what the service creates, in OpenAI's shapes: a prefix (`chatcmpl-`, `resp_`, `call_`...) then hex digits.

Random from the operating system: stored responses, conversations and files are looked up by their id.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import secrets


def new_id(prefix: str, digits: int = 32) -> str:
    """`prefix` followed by `digits` random hex digits (an even number)."""
    return prefix + secrets.token_hex(digits // 2)
