"""The Vercel AI SDK (npm `ai` + `@ai-sdk/openai`), for real: two turns of one conversation, streamed and not.

Its Responses model sends an earlier answer back as an `item_reference` (with `store` at its default), which
the service resolves from its store, or as text with `store` off: either way the LLM's second prompt holds
the first answer. Needs node and the two
packages (`.ci/run` installs them into .tools/vercel-ai): set VERCEL_AI_DIR to that folder, or the test skips
(in CI, where it must run, it fails).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support import TESTS_DIR, ServiceProcess
from upstream import ScriptedUpstream

SCRIPT = TESTS_DIR / "vercel_ai_two_turns.mjs"
NODE_TIMEOUT = 120
QUESTION = "What is the capital of France?"
ANSWER = "The capital of France is Paris."
FOLLOW_UP = "How many people live there?"


def vercel_ai_script(tmp_path: Path) -> list[str]:
    """`node <script>` in a folder whose node_modules holds the SDK; a skip (a failure in CI) without it."""
    packages = Path(os.environ.get("VERCEL_AI_DIR", "")) / "node_modules"
    node = shutil.which("node")
    if not os.environ.get("VERCEL_AI_DIR") or not (packages / "@ai-sdk" / "openai").is_dir() or node is None:
        message = "needs node and VERCEL_AI_DIR: a folder with npm's `ai` and `@ai-sdk/openai` (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    work = tmp_path / "vercel-ai"
    work.mkdir()
    (work / "node_modules").symlink_to(packages)  # node resolves an ES module's imports from the script's folder
    shutil.copy(SCRIPT, work)
    return [node, str(work / SCRIPT.name)]


@pytest.mark.parametrize(
    ("stream", "store"),
    [(False, True), (True, True), (False, False)],
    ids=["generateText", "streamText", "generateText-store-off"],
)
def test_a_second_turn_holds_the_first_answer(
    service: ServiceProcess, upstream: ScriptedUpstream, tmp_path: Path, stream: bool, store: bool
) -> None:
    command = vercel_ai_script(tmp_path)
    upstream.script(text=ANSWER)
    upstream.script(text="About two million.")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SERVICE_URL": service.base_url,
        "MODEL": "llm",
        "STREAM": "1" if stream else "0",
        "STORE": "1" if store else "0",
        "QUESTION": QUESTION,
        "FOLLOW_UP": FOLLOW_UP,
    }
    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=NODE_TIMEOUT, check=False)
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert (result["first"], result["second"]) == (ANSWER, "About two million.")

    second_input = result["sent"][1]["input"]
    references = [item for item in second_input if item.get("type") == "item_reference"]
    assert len(references) == (1 if store else 0), f"with store, the first answer goes by reference: {second_input}"
    prompt = [(message["role"], message["content"]) for message in upstream.requests[1]["messages"]]
    assert prompt == [("user", QUESTION), ("assistant", ANSWER), ("user", FOLLOW_UP)]
