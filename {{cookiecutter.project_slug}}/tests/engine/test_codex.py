"""Codex CLI, for real: `codex exec` against the service on loopback, through the Responses API.

Needs the Codex binary (`npm install @openai/codex`): set CODEX_BIN to its path, or the test skips.
Codex runs every function_call it receives, so an agent that leaked its own tool calls would loop:
the tests check the answer, the exit code, and how many LLM calls the run took. With the passthrough model
`llm`, Codex's own tools reach the LLM and the command the LLM asks for is run by Codex.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support import ServiceProcess
from upstream import ScriptedUpstream

CODEX_TIMEOUT = 120


def run_codex(
    service: ServiceProcess,
    model: str,
    prompt: str,
    home: Path,
    settings: str = "",
    *,
    as_openai: bool = False,
    tables: str = "",
) -> subprocess.CompletedProcess[str]:
    """`codex exec` with the service as its provider; `settings`: more top-level lines of Codex's config.toml,
    `tables`: more tables, after the provider's (such as `[mcp_servers.x]`).

    `as_openai`: the service in place of OpenAI's own provider (`openai_base_url`), where Codex uses what only
    OpenAI serves, such as its remote compaction.
    """
    codex = os.environ.get("CODEX_BIN")
    if not codex:
        pytest.skip("CODEX_BIN is not set (path to the codex binary from npm @openai/codex)")
    home.mkdir()
    provider = (
        f'openai_base_url = "{service.base_url}/v1"\n'
        if as_openai
        else 'model_provider = "service"\n'
        "[model_providers.service]\n"
        'name = "Haystack service"\n'
        f'base_url = "{service.base_url}/v1"\n'
        'wire_api = "responses"\n'
        'env_key = "SERVICE_API_KEY"\n'
    )
    (home / "config.toml").write_text(settings + f'model = "{model}"\n' + provider + tables)
    workdir = home.parent / "work"
    workdir.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home.parent),
        "CODEX_HOME": str(home),
        "SERVICE_API_KEY": "unused",
        "OPENAI_API_KEY": "unused",
        "NO_PROXY": "*",
    }
    return subprocess.run(
        [codex, "exec", "--skip-git-repo-check", "--sandbox", "read-only", prompt],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CODEX_TIMEOUT,
        check=False,
    )


def test_codex_exec_gets_the_agent_answer(service: ServiceProcess, upstream: ScriptedUpstream, tmp_path: Path) -> None:
    upstream.script(text="", tool_calls=[{"id": "call_clock", "name": "get_current_time", "arguments": "{}"}])
    upstream.script(text="The agent says it is 12:00 UTC.")
    result = run_codex(service, "agent", "What time is it?", tmp_path / "codex")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "The agent says it is 12:00 UTC." in result.stdout, (result.stdout, result.stderr[-3000:])
    # One Codex request: the agent's two LLM calls (tool call, then answer), and nothing more.
    assert len(upstream.requests) == 2, [r["messages"][-1] for r in upstream.requests]
    first_messages = upstream.requests[0]["messages"]
    assert first_messages[-1] == {"role": "user", "content": "What time is it?"}
    assert any(m["role"] == "tool" for m in upstream.requests[1]["messages"])


def test_codex_exec_gets_the_chat_stream_answer(
    service: ServiceProcess, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    upstream.script(text="Streamed to Codex.", reasoning="Codex asked something simple.")
    result = run_codex(service, "chat_stream", "Say something", tmp_path / "codex")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Streamed to Codex." in result.stdout, (result.stdout, result.stderr[-3000:])
    assert len(upstream.requests) == 1
    system = [m["content"] for m in upstream.requests[0]["messages"] if m["role"] == "system"]
    assert system[0] == "You are a helpful assistant."
    assert len(system) >= 2, "Codex's own instructions follow our system prompt"


def test_codex_runs_its_own_tool_through_the_passthrough_model(
    service: ServiceProcess, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    """`llm` offers Codex's own tools to the LLM and hands the LLM's call back: Codex runs the command, and the
    LLM's next call sees its output. One tool call, one answer, and Codex is done: two LLM calls in all."""
    command = {"cmd": "echo codex-ran-this-$((6*7))"}
    upstream.script(text="", tool_calls=[{"id": "call_exec", "name": "exec_command", "arguments": json.dumps(command)}])
    upstream.script(text="The command printed codex-ran-this-42.")
    result = run_codex(service, "llm", "Run the echo command", tmp_path / "codex")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "The command printed codex-ran-this-42." in result.stdout, (result.stdout, result.stderr[-3000:])
    assert len(upstream.requests) == 2, [r["messages"][-1] for r in upstream.requests]
    first, second = upstream.requests
    assert "exec_command" in [tool["function"]["name"] for tool in first["tools"]], "Codex's tools reach the LLM"
    assert first["messages"][0]["role"] == "system" and "Codex" in first["messages"][0]["content"]
    tool_results = [m for m in second["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_results] == ["call_exec"]
    assert "codex-ran-this-42" in tool_results[0]["content"], "the LLM sees the output of the command Codex ran"


def test_codex_calls_a_tool_of_the_service_over_mcp(
    service: ServiceProcess, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    """The service as Codex's MCP server (`[mcp_servers.x] url`): the rag example's typed entry is a tool Codex
    offers the LLM; the LLM calls it, Codex calls /mcp, and the LLM's next call sees the passages."""
    arguments = json.dumps({"query": "Which headers does Open WebUI send?", "top_k": 1})
    upstream.script(text="", tool_calls=[{"id": "call_docs", "name": "mcp__haystack__rag", "arguments": arguments}])
    upstream.script(text="The docs say: switch on ENABLE_FORWARD_USER_INFO_HEADERS.")
    tables = f'[mcp_servers.haystack]\nurl = "{service.base_url}/mcp"\n'
    result = run_codex(service, "llm", "Search the docs about Open WebUI", tmp_path / "codex", tables=tables)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ENABLE_FORWARD_USER_INFO_HEADERS" in result.stdout, (result.stdout, result.stderr[-3000:])
    assert len(upstream.requests) == 2, [r["messages"][-1] for r in upstream.requests]
    first, second = upstream.requests
    offered = {tool["function"]["name"]: tool["function"] for tool in first["tools"]}
    assert "mcp__haystack__rag" in offered, " ".join(sorted(offered))
    assert offered["mcp__haystack__rag"]["description"].startswith("Search the documentation of this service")
    tool_results = [m for m in second["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_results] == ["call_docs"]
    assert "Open WebUI connects to the service" in tool_results[0]["content"], "the passage came from /mcp"


def compacted_session(
    service: ServiceProcess, upstream: ScriptedUpstream, tmp_path: Path, answer: str, *, as_openai: bool = False
) -> list[dict[str, Any]]:
    """A session past Codex's auto-compact limit (set low here): a tool step, the summary, then `answer` from the
    summary. The three requests the LLM got: the tool step, the summary's, and the one after the compaction."""
    command = {"cmd": "echo step-one"}
    call = {"id": "call_one", "name": "exec_command", "arguments": json.dumps(command)}
    upstream.script(text="", tool_calls=[call], usage=(200_000, 10))  # far past the limit below
    upstream.script(text="CHECKPOINT: echo step-one ran; only the answer is left.")
    upstream.script(text=answer)
    settings = "model_auto_compact_token_limit = 1000\n"
    prompt = "Run echo step-one, then say you are done"
    result = run_codex(service, "llm", prompt, tmp_path / "codex", settings, as_openai=as_openai)
    assert result.returncode == 0, result.stderr[-3000:]
    assert answer in result.stdout, (result.stdout, result.stderr[-3000:])
    assert len(upstream.requests) == 3, [r["messages"][-1] for r in upstream.requests]
    _, summary, after = upstream.requests
    assert any(m["role"] == "tool" and "step-one" in m["content"] for m in summary["messages"]), "summarised"
    texts = [m["content"] for m in after["messages"] if isinstance(m.get("content"), str)]
    assert any("CHECKPOINT: echo step-one ran" in text for text in texts), "the next request starts from the summary"
    assert not any(m["role"] == "tool" for m in after["messages"]), "the tool step was compacted away"
    return upstream.requests


def test_codex_compacts_a_long_session_and_goes_on(
    service: ServiceProcess, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    """With a provider of its own, as here, Codex 0.169 compacts by itself: one ordinary Responses request asking
    for a checkpoint summary, then the history replaced by it (it calls no `/responses/compact`)."""
    _, summary, _ = compacted_session(service, upstream, tmp_path, "Finished after the checkpoint.")
    assert "COMPACTION" in summary["messages"][-1]["content"], "Codex asked for its checkpoint summary"


def test_codex_as_openai_compacts_remotely_and_goes_on(
    service: ServiceProcess, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    """With the service in place of OpenAI's provider, Codex compacts remotely: a streamed `/v1/responses` whose
    last input item is a `compaction_trigger`, answered with exactly one `compaction` item. It sends that item back
    on the next request, where the service puts the stored summary in its place."""
    compacted_session(service, upstream, tmp_path, "Finished after the remote checkpoint.", as_openai=True)
