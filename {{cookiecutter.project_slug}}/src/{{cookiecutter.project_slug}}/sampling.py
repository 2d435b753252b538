"""The request's sampling settings, as the `generation_kwargs` a Haystack chat generator takes.

    pipeline.run({"llm": {"messages": messages, "generation_kwargs": generation_kwargs(body)}})

Without this, a client's `max_tokens` or `stop` would never reach the LLM: the example wrappers pass it to
their generator, and so can yours.
"""

from typing import Any

# Sent on under their own names; the Responses API has only the first two.
SAMPLING_FIELDS = ("temperature", "top_p", "seed", "stop")

# The answer's length limit, by the name each API gives it, and the name the LLM server gets. Chat
# Completions' two names go on as the client wrote them (OpenAI's newer models refuse `max_tokens`, older
# servers know only it); Responses' `max_output_tokens` becomes the newer name.
LENGTH_LIMITS = {
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_completion_tokens",
    "max_output_tokens": "max_completion_tokens",
}


def generation_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    """The sampling fields the client set, for the chat generator; unset or null ones keep the generator's own."""
    kwargs = {name: body[name] for name in SAMPLING_FIELDS if body.get(name) is not None}
    for name, llm_name in LENGTH_LIMITS.items():
        if body.get(name) is not None:
            kwargs[llm_name] = body[name]
    return kwargs
