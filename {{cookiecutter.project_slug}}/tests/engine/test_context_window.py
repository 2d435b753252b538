"""A chain longer than a wrapper's LLM can take is cut with `truncation: "auto"`, and refused with a clear 400 without.

`window_declared` (tests/engine/test_wrappers) declares `context_window = 300` and records the input it ran on;
`window_undeclared` declares none. The estimate is characters / 4 of the text plus 4 per item, so a user message
of 400 characters is 104 tokens and the wrappers' "ok" is 5: two such turns fit in 300, a third does not.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from support import ServiceProcess, assert_error, env_for_test_wrappers, serve, wait_until
from test_wrappers.window_declared import WINDOW
from upstream import ScriptedUpstream

TURN_CHARACTERS = 400  # 104 tokens with the item's 4


@pytest.fixture(scope="module")
def capped_service(
    upstream: ScriptedUpstream, wrapper_state_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The test wrappers with CONTEXT_WINDOW=1000: the limit of every wrapper that declares none."""
    env = env_for_test_wrappers(upstream.base_url, wrapper_state_dir, CONTEXT_WINDOW="1000")
    yield from serve(tmp_path_factory.mktemp("capped_service"), "capped_service", env)


def user_text(tag: str, characters: int = TURN_CHARACTERS) -> str:
    """A user message that starts with `tag`, padded to `characters`."""
    return f"{tag} ".ljust(characters, ".")


def new_probe() -> str:
    return f"probe-{uuid.uuid4().hex[:12]}"


def say(service: ServiceProcess, model: str, text: str, previous: str | None = None, **fields: Any) -> tuple[Any, str]:
    """One turn through the SDK; returns the response and the probe its input was recorded under."""
    probe = new_probe()
    if previous is not None:
        fields["previous_response_id"] = previous
    response = service.client().responses.create(model=model, input=text, metadata={"probe": probe}, **fields)
    return response, probe


def received(state_dir: Path, probe: str) -> list[str] | None:
    """What the wrapper ran on, one word per item: `user:u2`, `assistant:ok`, `call:call_0`, ...; None if it never ran."""
    path = state_dir / f"{probe}.items"
    if not path.exists():
        return None
    return [describe(item) for item in json.loads(path.read_text())]


def describe(item: dict[str, Any]) -> str:
    kind = item.get("type", "message")
    if kind == "message":
        content = item["content"]
        text = content if isinstance(content, str) else "".join(part.get("text", "") for part in content)
        return f"{item['role']}:{text.split()[0]}"
    if kind == "function_call":
        return f"call:{item['call_id']}"
    if kind == "function_call_output":
        return f"output:{item['call_id']}"
    return kind


def two_turns(service: ServiceProcess, model: str, **fields: Any) -> Any:
    """Two turns of 400 characters chained by previous_response_id: 213 tokens, under 300."""
    first, _ = say(service, model, user_text("u1"), **fields)
    second, _ = say(service, model, user_text("u2"), first.id, **fields)
    return second


def test_a_chain_past_the_limit_is_a_clear_400_and_never_runs(
    test_service: ServiceProcess, wrapper_state_dir: Path
) -> None:
    second = two_turns(test_service, "window_declared")
    probe = new_probe()
    with pytest.raises(openai.BadRequestError) as refused:
        test_service.client().responses.create(
            model="window_declared", input=user_text("u3"), previous_response_id=second.id, metadata={"probe": probe}
        )
    error = refused.value.body
    assert isinstance(error, dict), error
    assert (error["code"], error["param"], error["type"]) == (
        "context_length_exceeded",
        "input",
        "invalid_request_error",
    )
    message = error["message"]
    assert f"{WINDOW} tokens" in message and "'window_declared'" in message, message
    estimate = int(re.search(r"about (\d+) tokens", message).group(1))  # type: ignore[union-attr]
    assert estimate > WINDOW, message
    assert "truncation: 'auto'" in message and "compact" in message and "new one" in message, message
    assert received(wrapper_state_dir, probe) is None, "the wrapper ran on an input too long for it"


@pytest.mark.parametrize("stream", [False, True])
def test_the_400_is_openais_envelope_streamed_or_not(test_service: ServiceProcess, stream: bool) -> None:
    second = two_turns(test_service, "window_declared")
    body = {"model": "window_declared", "input": user_text("u3"), "previous_response_id": second.id, "stream": stream}
    with test_service.http() as http:
        response = http.post("/v1/responses", json=body)
    assert_error(response, 400, err_type="invalid_request_error", param="input", code="context_length_exceeded")


def test_auto_drops_the_oldest_turns_whole_and_keeps_developer_messages(
    test_service: ServiceProcess, wrapper_state_dir: Path
) -> None:
    client = test_service.client()
    developer = {"role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]}  # 7 tokens, kept
    first = client.responses.create(
        model="window_declared", input=[developer, {"role": "user", "content": user_text("u1")}]
    )
    second, probe = say(test_service, "window_declared", user_text("u2"), first.id, truncation="auto")
    assert received(wrapper_state_dir, probe) == ["developer:Be", "user:u1", "assistant:ok", "user:u2"], (
        "cut though it fit"
    )

    third, probe = say(test_service, "window_declared", user_text("u3"), second.id, truncation="auto")
    assert third.status == "completed" and third.truncation == "auto", third
    assert received(wrapper_state_dir, probe) == ["developer:Be", "user:u2", "assistant:ok", "user:u3"]
    stored = [describe(item.model_dump()) for item in client.responses.input_items.list(third.id, order="asc").data]
    assert stored == ["developer:Be", "user:u2", "assistant:ok", "user:u3"], "what is stored is not what ran"

    fourth, probe = say(test_service, "window_declared", user_text("u4"), third.id, truncation="auto")
    assert fourth.status == "completed", fourth
    assert received(wrapper_state_dir, probe) == ["developer:Be", "user:u3", "assistant:ok", "user:u4"]


def test_auto_never_parts_a_tool_call_from_its_output_or_its_reasoning(
    test_service: ServiceProcess, wrapper_state_dir: Path
) -> None:
    """u1 54 tokens, reasoning 6, call_0 59 (long arguments), its output 6, reasoning 6, call_1 8, its output 200.

    That is 339: dropping call_0 alone would fit, but its output and reasoning go with it; the newest user message
    stays, as does the newest step, with its reasoning.
    """
    first, _ = say(test_service, "window_declared", user_text("TOOLS", 200), truncation="auto")
    assert [item.type for item in first.output] == ["reasoning", "function_call"], first.output
    answer = {"type": "function_call_output", "call_id": "call_0", "output": "sunny"}
    second = test_service.client().responses.create(
        model="window_declared", input=[answer], previous_response_id=first.id, truncation="auto"
    )
    assert [item.type for item in second.output] == ["reasoning", "function_call"], second.output
    probe = new_probe()
    long_answer = {"type": "function_call_output", "call_id": "call_1", "output": "r" * 784}
    third = test_service.client().responses.create(
        model="window_declared",
        input=[long_answer],
        previous_response_id=second.id,
        truncation="auto",
        metadata={"probe": probe},
    )
    assert third.status == "completed", third
    assert received(wrapper_state_dir, probe) == ["user:TOOLS", "reasoning", "call:call_1", "output:call_1"]


def test_auto_refuses_when_the_newest_turn_alone_does_not_fit(test_service: ServiceProcess) -> None:
    with test_service.http() as http:
        body = {"model": "window_declared", "input": user_text("huge", 2000), "truncation": "auto"}
        error = assert_error(http.post("/v1/responses", json=body), 400, param="input", code="context_length_exceeded")
    assert "even truncated" in error["message"] and f"{WINDOW} tokens" in error["message"], error


def test_max_output_tokens_is_kept_free_for_the_answer(test_service: ServiceProcess) -> None:
    first, _ = say(test_service, "window_declared", user_text("u1"))
    with pytest.raises(openai.BadRequestError) as refused:  # 213 tokens fit in 300, not in 300 - 100
        say(test_service, "window_declared", user_text("u2"), first.id, max_output_tokens=100)
    assert refused.value.code == "context_length_exceeded"
    assert "max_output_tokens 100" in refused.value.message, refused.value.message


def test_background_runs_are_refused_and_truncated_alike(test_service: ServiceProcess, wrapper_state_dir: Path) -> None:
    second = two_turns(test_service, "window_declared")
    client = test_service.client()
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(
            model="window_declared", input=user_text("u3"), previous_response_id=second.id, background=True
        )
    assert refused.value.code == "context_length_exceeded"

    third, probe = say(test_service, "window_declared", user_text("u3"), second.id, background=True, truncation="auto")
    done = wait_until(lambda: client.responses.retrieve(third.id).status in ("completed", "failed"), timeout=30)
    assert done, client.responses.retrieve(third.id)
    assert client.responses.retrieve(third.id).status == "completed"
    assert received(wrapper_state_dir, probe) == ["user:u2", "assistant:ok", "user:u3"]


def test_a_conversation_is_refused_without_change_and_kept_whole_when_truncated(
    test_service: ServiceProcess, wrapper_state_dir: Path
) -> None:
    client = test_service.client()
    conversation = client.conversations.create()
    for tag in ("u1", "u2"):
        say(test_service, "window_declared", user_text(tag), conversation=conversation.id)

    def items() -> list[str]:
        listed = client.conversations.items.list(conversation.id, order="asc", limit=100).data
        return [describe(item.model_dump()) for item in listed]

    before = items()
    assert before == ["user:u1", "assistant:ok", "user:u2", "assistant:ok"], before
    with pytest.raises(openai.BadRequestError) as refused:
        say(test_service, "window_declared", user_text("u3"), conversation=conversation.id)
    assert refused.value.code == "context_length_exceeded"
    assert items() == before, "a refused turn changed the conversation"

    _, probe = say(test_service, "window_declared", user_text("u3"), conversation=conversation.id, truncation="auto")
    assert received(wrapper_state_dir, probe) == ["user:u2", "assistant:ok", "user:u3"]
    assert items() == [*before, "user:u3", "assistant:ok"], "truncation dropped turns from the conversation itself"


def test_a_wrapper_without_a_limit_is_never_cut(test_service: ServiceProcess, wrapper_state_dir: Path) -> None:
    previous = None
    for turn in range(1, 5):  # 504 tokens a turn, nothing declared, no CONTEXT_WINDOW: all of it runs
        response, probe = say(test_service, "window_undeclared", user_text(f"u{turn}", 2000), previous)
        previous = response.id
    assert received(wrapper_state_dir, probe) == [
        "user:u1",
        "assistant:ok",
        "user:u2",
        "assistant:ok",
        "user:u3",
        "assistant:ok",
        "user:u4",
    ]


def test_context_window_setting_caps_the_wrappers_that_declare_none(
    capped_service: ServiceProcess, wrapper_state_dir: Path
) -> None:
    first, probe = say(capped_service, "window_undeclared", user_text("u1", 2000))  # 504 of 1000
    assert received(wrapper_state_dir, probe) == ["user:u1"]
    with pytest.raises(openai.BadRequestError) as refused:  # 504 + 5 + 504
        say(capped_service, "window_undeclared", user_text("u2", 2000), first.id)
    assert refused.value.code == "context_length_exceeded" and "1000 tokens" in refused.value.message

    second = two_turns(capped_service, "window_declared")  # its own 300 wins over the setting's 1000
    with pytest.raises(openai.BadRequestError) as refused:
        say(capped_service, "window_declared", user_text("u3"), second.id)
    assert f"{WINDOW} tokens" in refused.value.message, refused.value.message
