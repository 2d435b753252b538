"""The LLM machinery behind `llm.py`: the OpenAI-compatible generator, the offline stand-in, LLM server faults."""
