"""Open WebUI's background tasks (chat title, tags, follow-up suggestions, search queries), answered cheaply.

After an answer, Open WebUI asks the same model for a chat title, tags and follow-up suggestions:
`stream: false` requests whose one user message is a prompt starting with `### Task:` that asks for one
JSON object (`{"title": ...}`, `{"tags": [...]}`, `{"follow_ups": [...]}`). Running the user's
pipeline for these would cost a full run each (an agent would call its tools to name a chat), so the
Open WebUI adapter (`client.py`) answers them here, before any wrapper runs:

- with TASK_MODEL set, by passing the prompt to that model (an OpenAI-compatible server at
  TASK_BASE_URL, default OPENAI_BASE_URL, with TASK_API_KEY, default OPENAI_API_KEY);
- otherwise without any LLM: the first user message as the title, no tags, no follow-ups, and the
  latest user message as the only search query.

A wrapper whose class sets `handles_openwebui_tasks = True` gets these requests like any other, and
can call `background_task(body)` to tell them apart.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import json
import logging
import os
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.dataclasses import ChatMessage
from haystack.utils import Secret

logger = logging.getLogger(__name__)

TASK_PREFIX = "### Task:"
TASK_LLM_TIMEOUT_SECONDS = 60.0
MAX_TITLE_WORDS = 6

# Each task asks for a JSON object with one key; its prompt names the key in its output format.
# Checked in this order, on the instructions only (before the chat history, which may quote anything).
TASK_KEYS = {
    "follow_ups": "follow_ups",
    "tags": "tags",
    "queries": "queries",
    "title": "title",
    "image_prompt": "prompt",
    "autocomplete": "text",
}
_TURN = re.compile(r"^(USER|ASSISTANT|SYSTEM|TOOL): ", re.MULTILINE)


@dataclass(frozen=True)
class BackgroundTask:
    """One Open WebUI task request: which task (a key of TASK_KEYS) and its prompt."""

    kind: str
    prompt: str

    @property
    def key(self) -> str:
        """The key of the JSON object Open WebUI reads back."""
        return TASK_KEYS[self.kind]

    def user_messages(self) -> list[str]:
        """The user turns of the chat history quoted in the prompt (`USER: ...` lines), oldest first."""
        history = self.prompt.partition("<chat_history>")[2].partition("</chat_history>")[0]
        pieces = _TURN.split(history)  # ["", "USER", "text", "ASSISTANT", "text", ...]
        return [text.strip() for role, text in zip(pieces[1::2], pieces[2::2], strict=True) if role == "USER"]


def background_task(body: dict[str, Any]) -> BackgroundTask | None:
    """The task a chat request is, or None for an ordinary request (or a `### Task:` prompt of unknown kind)."""
    messages = body.get("messages")
    if body.get("stream") is True or not isinstance(messages, list):
        return None
    # Open WebUI puts a model's own system prompt (set in its model settings) before the task prompt.
    turns = [m for m in messages if not (isinstance(m, dict) and m.get("role") in ("system", "developer"))]
    if len(turns) != 1:
        return None
    only = turns[0]
    prompt = only.get("content") if isinstance(only, dict) and only.get("role") == "user" else None
    if not isinstance(prompt, str) or not prompt.lstrip().startswith(TASK_PREFIX):
        return None
    instructions = prompt.partition("<chat_history>")[0]
    for kind, key in TASK_KEYS.items():
        if re.search(rf'"{key}"\s*:', instructions):
            return BackgroundTask(kind, prompt)
    return None


def default_answer(task: BackgroundTask) -> dict[str, Any]:
    """The answer without an LLM: a title from the first user message, and nothing Open WebUI would show wrongly."""
    users = task.user_messages()
    if task.kind == "title":
        return {"title": title_from(users[0] if users else "")}
    if task.kind == "queries":
        return {"queries": users[-1:]}
    if task.kind == "image_prompt":
        return {"prompt": users[-1] if users else ""}
    if task.kind == "autocomplete":
        return {"text": ""}
    return {task.key: []}  # tags, follow_ups


def title_from(text: str) -> str:
    """The first words of the first line, for a sidebar entry: 'How do I reset my password…'."""
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    words = first_line.split()
    title = " ".join(words[:MAX_TITLE_WORDS]).rstrip(".,;:!?")
    return f"{title}…" if len(words) > MAX_TITLE_WORDS else title


async def answer_task(
    task: BackgroundTask, model: str | None, base_url: str | None = None, api_key: str | None = None
) -> str:
    """The JSON text to answer `task` with: from the task `model` when one is configured, else the default."""
    if model:
        try:
            reply = await _task_generator(model, base_url, api_key).run_async(
                messages=[ChatMessage.from_user(task.prompt)]
            )
            answer = _json_object(reply["replies"][0].text or "")
            if task.key in answer:
                return json.dumps(answer, ensure_ascii=False)
            logger.warning("The task model's %s answer has no %r key; using the default answer", task.kind, task.key)
        except Exception as error:  # a title is not worth failing a request for
            logger.warning("The task model failed on a %s task (%s); using the default answer", task.kind, error)
    return json.dumps(default_answer(task), ensure_ascii=False)


def _json_object(text: str) -> dict[str, Any]:
    """The JSON object in an LLM reply, read the way Open WebUI reads it (from the first `{` to the last `}`)."""
    try:
        value = json.loads(text[text.find("{") : text.rfind("}") + 1])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@cache
def _task_generator(model: str, base_url: str | None, api_key: str | None) -> OpenAIChatGenerator:
    """One client per configuration, reused: it keeps its connections open between tasks."""
    key = api_key or os.environ.get("OPENAI_API_KEY") or "none"  # local servers accept any key
    return OpenAIChatGenerator(
        api_key=Secret.from_token(key),
        model=model,
        api_base_url=base_url,  # None: OPENAI_BASE_URL, else OpenAI
        timeout=TASK_LLM_TIMEOUT_SECONDS,
        max_retries=1,
    )
