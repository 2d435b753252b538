"""Who is asking: `request_context.current_request()` inside runs, with named API keys, Open WebUI's headers,
`user`, `safety_identifier` and `metadata`; plain keys keep working beside named ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from support import TESTS_DIR, ServiceProcess, base_env, user
from upstream import ScriptedUpstream

PLAIN_KEY, NAMED_KEY = "plain-key", "sk-team-b"
OPENWEBUI_HEADERS = {
    "X-OpenWebUI-User-Name": "Ada%20Lovelace",  # Open WebUI URL-quotes the name
    "X-OpenWebUI-User-Id": "user-42",
    "X-OpenWebUI-User-Email": "ada@example.com",
    "X-OpenWebUI-User-Role": "admin",
    "X-OpenWebUI-Chat-Id": "chat-7",
}


@pytest.fixture(scope="module")
def named_keys_service(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    env = base_env(
        WRAPPERS_PACKAGE="test_wrappers",
        PYTHONPATH=str(TESTS_DIR),
        API_KEYS=f"{PLAIN_KEY}, team-b:{NAMED_KEY}",
        TEST_WRAPPERS_DIR=str(tmp_path_factory.mktemp("named_keys_state")),
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"{upstream.base_url}/v1",
    )
    service = ServiceProcess(name="named_keys", workdir=tmp_path_factory.mktemp("named_keys"), env=env).start()
    yield service
    service.stop()


def client(service: ServiceProcess, key: str, headers: dict[str, str] | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{service.base_url}/v1", api_key=key, max_retries=0, timeout=30, default_headers=headers
    )


def chat_context(service: ServiceProcess, key: str, stream: bool = False, **fields: Any) -> dict[str, Any]:
    """What the sync chat method's pipeline saw, in its own thread."""
    completion = client(service, key, fields.pop("headers", None)).chat.completions.create(
        model="who_is_asking", messages=user("who?"), stream=stream, **fields
    )
    text = "".join(c.choices[0].delta.content or "" for c in completion if c.choices) if stream else None
    return json.loads(text if stream else completion.choices[0].message.content)


def test_a_named_key_reaches_sync_and_async_runs_by_its_name(named_keys_service: ServiceProcess) -> None:
    for stream in (False, True):
        seen = chat_context(named_keys_service, NAMED_KEY, stream=stream)
        assert (seen["api"], seen["api_key_name"]) == ("chat", "team-b"), seen
    response = client(named_keys_service, NAMED_KEY).responses.create(model="who_is_asking", input="who?")
    seen = json.loads(response.output_text)
    assert (seen["api"], seen["api_key_name"]) == ("responses", "team-b"), seen


def test_a_plain_key_still_works_and_has_no_name(named_keys_service: ServiceProcess) -> None:
    assert chat_context(named_keys_service, PLAIN_KEY)["api_key_name"] is None
    with pytest.raises(openai.AuthenticationError):
        client(named_keys_service, "team-b").models.list()  # a key's name is not a key


def test_the_end_user_metadata_and_headers(named_keys_service: ServiceProcess) -> None:
    seen = chat_context(
        named_keys_service,
        PLAIN_KEY,
        user="app-user-1",
        metadata={"tenant": "acme"},
        headers={"X-Tenant": "acme"},
    )
    assert (seen["user"], seen["end_user"], seen["metadata"]) == ("app-user-1", "app-user-1", {"tenant": "acme"})
    assert seen["x_tenant"] == "acme"
    assert "authorization" not in seen["header_names"], "wrappers never see the API key"
    response = client(named_keys_service, PLAIN_KEY).responses.create(
        model="who_is_asking", input="who?", safety_identifier="hashed-7", user="app-user-1"
    )
    seen = json.loads(response.output_text)
    assert (seen["safety_identifier"], seen["end_user"]) == ("hashed-7", "hashed-7"), "safety_identifier wins"


def test_open_webuis_forwarded_user(named_keys_service: ServiceProcess) -> None:
    seen = chat_context(named_keys_service, PLAIN_KEY, stream=True, headers=OPENWEBUI_HEADERS, user="ignored")
    assert seen["openwebui_user"] == {
        "id": "user-42",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "role": "admin",
        "chat_id": "chat-7",
    }
    assert seen["end_user"] == "user-42"


def test_a_header_of_open_webuis_connection_names_nobody(named_keys_service: ServiceProcess) -> None:
    """The header docs/openwebui.md sets on the connection to be recognised is not a forwarded user."""
    seen = chat_context(named_keys_service, PLAIN_KEY, stream=True, headers={"X-OpenWebUI-Client": "open-webui"})
    assert (seen["openwebui_user"], seen["end_user"]) == (None, None), seen


def test_no_context_leaks_into_the_next_request(named_keys_service: ServiceProcess) -> None:
    chat_context(named_keys_service, NAMED_KEY, headers=OPENWEBUI_HEADERS, user="someone")
    seen = chat_context(named_keys_service, PLAIN_KEY)
    assert (seen["api_key_name"], seen["openwebui_user"], seen["user"]) == (None, None, None), seen
