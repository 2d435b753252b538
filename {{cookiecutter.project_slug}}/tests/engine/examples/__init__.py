"""Frozen copies of the example wrappers, served to the engine's tests (WRAPPERS_PACKAGE=examples).

The engine's tests must not break when you edit or delete an example in `src/<package>/wrappers/`, or point
`llm.py` at another provider: so they serve these copies, never your `wrappers/`, and the copies use
`_llm.py` and `_streaming.py` here, copies of `llm.py` and `streaming.py`, never yours. Each module keeps its
example's model id (`chat`, `chat_stream`, `agent`, `files_qa`, `rag`, `llm`); modules starting with `_` are
not models (the registry skips them).

They are the template's, like everything under `tests/engine/`: each release refreshes them from its examples
(the same code, importing the engine as `<package>.engine` since they live outside the package). Do not edit
them; your own wrappers are tested by `tests/test_wrappers_load.py`.
"""
