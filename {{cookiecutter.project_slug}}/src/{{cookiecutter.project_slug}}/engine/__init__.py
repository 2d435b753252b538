"""The engine: the template's code, updated by `cruft update` (docs/keeping-up.md). Do not edit it by hand.

This module is its public surface, the one import for wrapper code, as `from hayhooks import ...` is for
hayhooks users:

    from ..engine import BasePipelineWrapper, chat_messages_from_openai, generation_kwargs

Everything a wrapper, `streaming.py` or `llm.py` needs is here; the modules below it are the engine's own and
may change in any release. A name leaves this list only after one release in which it still works, with a
`DeprecationWarning` (see `MOVED` below and the CHANGELOG).

A name is imported when first used, so importing a part of the engine (as the entry points do, to load `.env`
before Haystack is imported) imports nothing else.
"""

import importlib
import warnings
from typing import TYPE_CHECKING, Any

TEMPLATE_VERSION = "0.4.0"

# Public name -> the engine module that defines it.
PUBLIC = {
    # writing a wrapper
    "BasePipelineWrapper": "runs.base_wrapper",
    "RunResult": "runs.base_wrapper",
    "Piece": "runs.base_wrapper",
    "OpenAIError": "http.errors",
    "current_stop_flag": "runs.runner",
    "ApprovalHook": "runs.tool_approvals",  # an Agent's tools that wait for a person's approval
    "remote_mcp_tools": "runs.remote_mcp",  # the request's remote MCP servers' tools, for an Agent
    # what a request holds, for Haystack
    "chat_messages_from_openai": "parsing.messages",
    "chat_messages_from_openai_response": "parsing.messages",
    "chat_messages_from_openai_response_async": "parsing.messages",
    "get_last_user_message": "parsing.messages",
    "get_last_user_input_text": "parsing.messages",
    "message_text": "parsing.messages",
    "item_text": "parsing.messages",
    "image_url": "parsing.images",
    "generation_kwargs": "parsing.sampling",
    "output_format": "parsing.sampling",
    "tools_from_request": "parsing.declared_tools",
    "tool_choice_kwargs": "parsing.declared_tools",
    "tools_strict": "parsing.declared_tools",
    "RequestContext": "parsing.who_is_asking",
    "OpenWebUIUser": "parsing.who_is_asking",
    "current_request": "parsing.who_is_asking",
    # files
    "StoredFile": "files.file_store",
    "InputFile": "files.uploaded_files",
    "get_file": "files.uploaded_files",
    "decode_file_data": "files.uploaded_files",
    "file_content": "files.uploaded_files",
    "FileReferenceError": "files.uploaded_files",
    "read_file": "files.uploaded_files",
    "resolve_input_files": "files.uploaded_files",
    "resolve_chat_files": "files.uploaded_files",
    "get_input_files": "files.uploaded_files",
    # events a wrapper may yield besides text and Haystack chunks
    "Event": "runs.events",
    "TextDelta": "runs.events",
    "ReasoningDelta": "runs.events",
    "ToolCallDelta": "runs.events",
    "Usage": "runs.events",
    "Finish": "runs.events",
    "ClientSpecificEvent": "runs.events",
    # clients: the adapter of the current request, sources, Open WebUI's own events
    "ClientAdapter": "clients.adapter",
    "current_client": "clients.adapter",
    "show_sources": "clients.sources",
    "openwebui": "clients.openwebui",
    # the machinery behind streaming.py: it implements ChunkPolicy
    "ChunkPolicy": "runs.pipeline_runs",
    "PipelineStream": "runs.pipeline_runs",
    "pieces_on_loop": "runs.pipeline_runs",
    "usage_from_result": "runs.pipeline_runs",
    "usage_from": "runs.token_usage",
    "StreamedToolCalls": "runs.streamed_tool_calls",
    # the LLM machinery behind llm.py
    "ReasoningOpenAIChatGenerator": "generators.openai_generator",
    "OfflineChatGenerator": "generators.offline_llm",
    "answer_from_prompt": "generators.offline_llm",
    "OFFLINE_NOTE": "generators.offline_llm",
}

# Names that left the surface: old name -> (public name it became, the release that removes it). Each still works
# for one release, with a DeprecationWarning.
MOVED: dict[str, tuple[str, str]] = {}

__all__ = ["TEMPLATE_VERSION", *PUBLIC]


def __getattr__(name: str) -> Any:
    if name in MOVED:
        new_name, removed_in = MOVED[name]
        warnings.warn(
            f"engine.{name} is now engine.{new_name}; the old name goes in {removed_in}",
            DeprecationWarning,
            stacklevel=2,
        )
        name = new_name
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{PUBLIC[name]}", __name__)
    value = module if name == PUBLIC[name].rpartition(".")[2] else getattr(module, name)
    globals()[name] = value  # found once, then an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and editors; at run time `__getattr__` imports them on first use
    from .clients import openwebui
    from .clients.adapter import ClientAdapter, current_client
    from .clients.sources import show_sources
    from .files.file_store import StoredFile
    from .files.uploaded_files import (
        FileReferenceError,
        InputFile,
        decode_file_data,
        file_content,
        get_file,
        get_input_files,
        read_file,
        resolve_chat_files,
        resolve_input_files,
    )
    from .generators.offline_llm import OFFLINE_NOTE, OfflineChatGenerator, answer_from_prompt
    from .generators.openai_generator import ReasoningOpenAIChatGenerator
    from .http.errors import OpenAIError
    from .parsing.declared_tools import tool_choice_kwargs, tools_from_request, tools_strict
    from .parsing.images import image_url
    from .parsing.messages import (
        chat_messages_from_openai,
        chat_messages_from_openai_response,
        chat_messages_from_openai_response_async,
        get_last_user_input_text,
        get_last_user_message,
        item_text,
        message_text,
    )
    from .parsing.sampling import generation_kwargs, output_format
    from .parsing.who_is_asking import OpenWebUIUser, RequestContext, current_request
    from .runs.base_wrapper import BasePipelineWrapper, Piece, RunResult
    from .runs.events import ClientSpecificEvent, Event, Finish, ReasoningDelta, TextDelta, ToolCallDelta, Usage
    from .runs.pipeline_runs import ChunkPolicy, PipelineStream, pieces_on_loop, usage_from_result
    from .runs.remote_mcp import remote_mcp_tools
    from .runs.runner import current_stop_flag
    from .runs.streamed_tool_calls import StreamedToolCalls
    from .runs.token_usage import usage_from
    from .runs.tool_approvals import ApprovalHook
