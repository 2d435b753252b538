"""The LLM machinery behind `llm.py`: the OpenAI-compatible generator, the offline stand-in, LLM server faults.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""
