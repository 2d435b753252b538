"""The pipelines every target serves, built by the same code so the targets differ only in how they serve them.

Our service (`ours/bench_wrappers`), hayhooks (`hayhooks/*/pipeline_wrapper.py`) and the bare-Quart
floor (`bench/floor_app.py`) all import this module. The LLM is Haystack's `OpenAIChatGenerator`
talking to the scripted upstream at `OPENAI_BASE_URL`; the harness sets OPENAI_MAX_RETRIES=0 so a
failure shows as a failure instead of a slow success. Our wrappers pass in the generator the
template gives its users (`llm.make_chat_generator`, an OpenAIChatGenerator subclass), because that
is what a user of the template runs.
"""

from typing import Any

from bench_config import FIXED_ANSWER, UPSTREAM_MODEL
from haystack import Pipeline, component
from haystack.components.agents import Agent
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.dataclasses import ChatMessage
from haystack.tools import tool


@component
class FixedReply:
    """Stands in for an LLM that answers instantly: the pipeline still runs, nothing leaves the process."""

    @component.output_types(replies=list[ChatMessage])
    def run(self, messages: list[ChatMessage]) -> dict[str, Any]:
        return {"replies": [ChatMessage.from_assistant(FIXED_ANSWER)]}


def fixed_pipeline() -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("llm", FixedReply())
    return pipeline


def llm_pipeline(generator: OpenAIChatGenerator | None = None) -> Pipeline:
    """A lone chat generator: the most common shape, and the one the streaming scenarios use."""
    pipeline = Pipeline()
    pipeline.add_component("llm", generator or OpenAIChatGenerator(model=UPSTREAM_MODEL))
    return pipeline


@tool
def current_time() -> str:
    """The time of day: a tool the agent is given and the scripted upstream never asks for."""
    return "12:00"


def agent(generator: OpenAIChatGenerator | None = None) -> Agent:
    """An Agent with one tool, the other common shape. The upstream answers in text, so each run is one LLM
    step inside the Agent's own bookkeeping (its state, hooks and exit checks): what that costs per stream."""
    return Agent(chat_generator=generator or OpenAIChatGenerator(model=UPSTREAM_MODEL), tools=[current_time])


def agent_run_args(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Agent inputs for a request's messages: the whole conversation, as for the pipelines."""
    return {"messages": conversation(messages)}


@component
class PassMessages:
    """A step before the LLM that changes nothing: enough to make a pipeline more than a lone LLM."""

    @component.output_types(messages=list[ChatMessage])
    def run(self, messages: list[ChatMessage]) -> dict[str, Any]:
        return {"messages": messages}


def stepped_llm_pipeline(generator: Any) -> Pipeline:
    """`llm_pipeline` with `PassMessages` in front: the shape of every pipeline that is more than an LLM.

    Our helpers call a lone LLM directly; with this shape they go through `Pipeline` (scenario 3's
    `sync_stream_stepped` and `sync_stream_threaded`). Its inputs are `stepped_run_args`.
    """
    pipeline = Pipeline()
    pipeline.add_component("step", PassMessages())
    pipeline.add_component("llm", generator)
    pipeline.connect("step.messages", "llm.messages")
    return pipeline


def conversation(messages: list[dict[str, Any]]) -> list[ChatMessage]:
    """The request's whole conversation as Haystack messages, as a chat wrapper passes it to its LLM."""
    by_role = {"system": ChatMessage.from_system, "assistant": ChatMessage.from_assistant}
    return [by_role.get(m["role"], ChatMessage.from_user)(m.get("content") or "") for m in messages]


def stepped_run_args(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"step": {"messages": conversation(messages)}}


def run_args(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Pipeline inputs for a request's messages; every target passes them through unchanged."""
    return {"llm": {"messages": conversation(messages)}}


def reply_text(result: dict[str, Any]) -> str:
    return result["llm"]["replies"][0].text or ""
