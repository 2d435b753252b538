"""The scripted LLM behind the service in the browser test: a known answer for each example model.

It is the baked project's own scripted upstream (`tests/engine/upstream.py`), answering by what the request
looks like, since every example model calls the same upstream model:

- with one of the service's own tools among `tools` (Open WebUI offers them in a chat with the service as a tool
  server, through the `llm` model, which hands the LLM the client's tools): first a call of that tool, then, once
  its result is in the conversation, the scenario's answer followed by the document titles the result names;
- with other `tools` (the agent sends its own tool): first a call of the scenario's tool, then, once
  the tool's result is in the conversation, the scenario's answer followed by that result;
- with the rag example's system prompt (the retrieved documents in it): the rag answer;
- streamed, without tools (`chat_stream`): the scenario's reasoning, then its answer;
- not streamed (`chat`): the scenario's answer.

Open WebUI's background tasks must never get here (the service answers them itself), and Open WebUI's
own tools must never reach it but through `llm` (the other examples ignore them): each request is logged to
`--log` as one JSON line so the browser test can check both.

    python scripted_llm.py --port 8001 --upstream <baked project>/tests/engine --scenario scenario.json --log requests.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

RAG_PROMPT_START = "Answer the question from these documents only"  # the rag example's system prompt
# A passage's title in the search tool's result, whether Open WebUI passes that on as JSON or as JSON in a string.
PASSAGE_TITLE = re.compile(r'title\\?"\s*:\s*\\?"([^"\\]+)')


def called_tool_names(messages: list[dict[str, Any]]) -> set[str]:
    return {
        call.get("function", {}).get("name")
        for message in messages
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or ()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--upstream", type=Path, required=True, help="folder holding the baked tests/engine/upstream.py"
    )
    parser.add_argument("--scenario", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(args.upstream))
    from upstream import Script, ScriptedUpstream

    scenario = json.loads(args.scenario.read_text())
    models = {entry["model"]: entry for entry in scenario["models"]}
    service_tools = {entry["tool"]: entry for entry in scenario["tool_servers"]}

    def service_tool_script(entry: dict[str, Any], messages: list[dict[str, Any]]) -> Script:
        if entry["tool"] in called_tool_names(messages) and messages[-1].get("role") == "tool":
            titles = list(dict.fromkeys(PASSAGE_TITLE.findall(str(messages[-1].get("content")))))
            return Script(text=f"{entry['answer']} {', '.join(titles) or 'nothing'}.")
        return Script(text="", tool_calls=[{"name": entry["tool"], "arguments": json.dumps(entry["tool_arguments"])}])

    def script_for(body: dict[str, Any]) -> Script:
        messages = body.get("messages") or []
        offered = {tool.get("function", {}).get("name") for tool in body.get("tools") or ()}
        if entry := next((service_tools[name] for name in offered if name in service_tools), None):
            return service_tool_script(entry, messages)
        if body.get("tools"):
            agent = models["agent"]
            last = messages[-1] if messages else {}
            if last.get("role") == "tool":
                return Script(text=f"{agent['answer']} {last.get('content')}.")
            arguments = json.dumps(agent["tool_arguments"])
            return Script(text="", tool_calls=[{"name": agent["tool"], "arguments": arguments}])
        system = next((m.get("content") for m in messages if m.get("role") == "system"), None)
        if isinstance(system, str) and system.startswith(RAG_PROMPT_START):
            return Script(text=models["rag"]["answer"])
        if body.get("stream"):
            return Script(text=models["chat_stream"]["answer"], reasoning=models["chat_stream"]["reasoning"])
        return Script(text=models["chat"]["answer"])

    class ScenarioUpstream(ScriptedUpstream):
        def _next_script(self) -> Script:
            body = self.requests[-1]  # the request being answered: the browser test sends one at a time
            with args.log.open("a") as log:
                log.write(json.dumps(body) + "\n")
            return script_for(body)

    upstream = ScenarioUpstream("127.0.0.1", args.port)
    print(f"scripted LLM listening on {upstream.base_url}/v1", flush=True)
    asyncio.run(upstream.serve_forever())


if __name__ == "__main__":
    main()
