"""The client's own tools, offered to an LLM as Haystack `Tool`s; the client runs them, never the service.

A client that declares function tools (Codex's `exec_command` and `apply_patch`, an agent framework's,
Open WebUI's) expects the model to call them and the calls to come back for it to run. A wrapper that
wants this offers `tools_from_request(body)` to its chat generator, with `tool_choice_kwargs(body)` in its
`generation_kwargs`, and forwards the LLM's tool calls (`forward_tool_calls=True` in the streaming helpers):

    llm_inputs = {"messages": messages, "tools": tools_from_request(body) or None,
                  "generation_kwargs": generation_kwargs(body) | tool_choice_kwargs(body)}

The results come back in the client's next request, as `tool` messages (Chat Completions) or
`function_call_output` items (Responses), which `messages.py` turns into tool results.
Both APIs' shapes are read: Chat Completions nests a tool's function under `function`, Responses does not.
A Responses `namespace` tool (Codex sends its MCP servers' tools so, `mcp__<server>`) groups functions: the LLM,
which knows no namespaces, sees each as `<namespace>__<name>`, and a call of one goes back to the client with its
`namespace` and `name` apart (`namespaced_functions`, for the encoder). Tools of other types (`custom`,
`web_search`...) are not offered: Chat Completions LLMs know only functions.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from typing import Any

from haystack.tools import Tool

from ..http.errors import OpenAIError

NAMESPACE_SEPARATOR = "__"


def run_by_the_client(**arguments: Any) -> str:
    """A client tool's function: never called, as the service hands each call back to the client."""
    raise RuntimeError("This tool is the client's: the call goes back to the client, which runs it")


def function_spec(tool: object) -> dict[str, Any] | None:
    """The function of a function tool, in either API's shape; None for other tools."""
    if not isinstance(tool, dict) or tool.get("type") != "function":
        return None
    spec = tool.get("function", tool)
    return spec if isinstance(spec, dict) and isinstance(spec.get("name"), str) else None


def declared_functions(tools: object) -> list[tuple[int, dict[str, Any]]]:
    """The function specs of a request's tools, with the position of the tool declaring each; the functions of a
    `namespace` tool named `<namespace>__<name>`, as an LLM without namespaces sees them."""
    found = []
    for position, tool in enumerate(tools if isinstance(tools, list) else ()):
        if isinstance(tool, dict) and tool.get("type") == "namespace" and isinstance(tool.get("name"), str):
            for inner in tool.get("tools") or ():
                if (spec := function_spec(inner)) is not None:
                    found.append((position, {**spec, "name": f"{tool['name']}{NAMESPACE_SEPARATOR}{spec['name']}"}))
        elif (spec := function_spec(tool)) is not None:
            found.append((position, spec))
    return found


def namespaced_functions(body: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The name the LLM knows a namespace tool's function by -> its namespace and its own name."""
    tools = body.get("tools")
    return {
        f"{tool['name']}{NAMESPACE_SEPARATOR}{spec['name']}": (tool["name"], spec["name"])
        for tool in (tools if isinstance(tools, list) else ())
        if isinstance(tool, dict) and tool.get("type") == "namespace" and isinstance(tool.get("name"), str)
        for inner in tool.get("tools") or ()
        if (spec := function_spec(inner)) is not None
    }


def tools_from_request(body: dict[str, Any]) -> list[Tool]:
    """The request's function tools (those `tool_choice` allows, when it names a set) as Haystack Tools."""
    allowed = allowed_tool_names(body)
    tools = []
    for position, spec in declared_functions(body.get("tools")):
        if allowed is not None and spec["name"] not in allowed:
            continue
        parameters = spec.get("parameters") or {"type": "object", "properties": {}}
        try:
            tools.append(
                Tool(
                    name=spec["name"],
                    description=spec.get("description") or spec["name"],
                    parameters=parameters,
                    function=run_by_the_client,
                )
            )
        except Exception as error:  # Tool checks that `parameters` is a JSON Schema
            message = f"Tool '{spec['name']}' has parameters that are not a JSON Schema: {error}"
            raise OpenAIError(400, message, param=f"tools[{position}].parameters", code="invalid_value") from None
    return tools


def tools_strict(body: dict[str, Any]) -> bool:
    """True when every function tool asks for strict arguments (Haystack sets strictness for all tools at once)."""
    specs = [spec for _, spec in declared_functions(body.get("tools"))]
    return bool(specs) and all(spec.get("strict") is True for spec in specs)


def allowed_tool_names(body: dict[str, Any]) -> set[str] | None:
    """The names an `allowed_tools` tool_choice permits, or None when it permits all of them."""
    choice = body.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "allowed_tools":
        return None
    allowed = choice.get("allowed_tools", choice)  # Chat Completions nests the set, Responses does not
    return {spec["name"] for tool in allowed.get("tools") or () if (spec := function_spec(tool)) is not None}


def tool_choice_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    """`tool_choice` (in the Chat Completions form LLM servers take) and `parallel_tool_calls`, when tools are sent.

    An `allowed_tools` choice becomes its mode, the tools offered being limited to the allowed ones instead:
    few OpenAI-compatible servers know `allowed_tools`.
    """
    if not declared_functions(body.get("tools")):
        return {}  # servers refuse tool_choice and parallel_tool_calls without tools
    kwargs: dict[str, Any] = {}
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        kwargs["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        kwargs["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        kwargs["tool_choice"] = choice.get("allowed_tools", choice).get("mode", "auto")
    if isinstance(body.get("parallel_tool_calls"), bool):
        kwargs["parallel_tool_calls"] = body["parallel_tool_calls"]
    return kwargs
