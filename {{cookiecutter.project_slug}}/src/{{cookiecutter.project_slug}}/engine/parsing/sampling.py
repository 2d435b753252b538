"""The request's sampling settings, as the `generation_kwargs` a Haystack chat generator takes.

    pipeline.run({"llm": {"messages": messages, "generation_kwargs": generation_kwargs(body)}})

Without this, a client's `max_tokens` or `stop` would never reach the LLM: the example wrappers pass it to
their generator, and so can yours. `output_format(body)` adds the structured output the client asked for
(Responses `text.format`, Chat Completions `response_format`), for a wrapper whose answer is the LLM's own.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from typing import Any

# Sent on under their own names; the Responses API has no `seed` or `stop`.
SAMPLING_FIELDS = ("temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty")

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


def output_format(body: dict[str, Any]) -> dict[str, Any]:
    """The `response_format` generation kwarg for the structured output the client asked for; {} for plain text.

    Chat Completions' `response_format` goes on as it is; a Responses `text.format` is the same thing in a
    flatter shape (`{"type": "json_schema", "name", "schema", "strict"}`), turned into Chat Completions' form.
    """
    if isinstance(body.get("response_format"), dict):
        wanted = body["response_format"]
        return {} if wanted.get("type") == "text" else {"response_format": wanted}
    text_format = (body.get("text") or {}).get("format") or {}
    if text_format.get("type") == "json_object":
        return {"response_format": {"type": "json_object"}}
    if text_format.get("type") != "json_schema":
        return {}
    schema = {key: text_format[key] for key in ("name", "description", "schema", "strict") if key in text_format}
    return {"response_format": {"type": "json_schema", "json_schema": schema}}
