"""This service: Haystack pipelines and agents behind the OpenAI API.

Yours: `wrappers/` (one module per model), `streaming.py` and `llm.py`; edit them freely.
The template's: `engine/` (updated by `cruft update`, see docs/keeping-up.md) and the entry points `asgi.py` and
`__main__.py`. Wrapper code imports the engine through `engine` alone: `from ..engine import BasePipelineWrapper`.
"""
