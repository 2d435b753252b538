"""`/v1/models`: clients (Open WebUI, the SDK) discover what they can talk to here."""

from __future__ import annotations

import openai
import pytest

from support import ServiceProcess, assert_error

EXAMPLE_MODELS = ("chat", "chat_stream", "agent")


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_list_shape(service: ServiceProcess, prefix: str) -> None:
    """The list object and every model object carry exactly OpenAI's fields."""
    with service.http() as http:
        response = http.get(f"{prefix}/models")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["object"] == "list"
    assert isinstance(body["data"], list)
    for model in body["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}, model
        assert model["object"] == "model"
        assert isinstance(model["id"], str) and model["id"]
        assert isinstance(model["created"], int) and not isinstance(model["created"], bool)
        assert isinstance(model["owned_by"], str)
    ids = [model["id"] for model in body["data"]]
    assert len(ids) == len(set(ids)), ids
    for name in EXAMPLE_MODELS:
        assert name in ids


def test_list_via_sdk(service: ServiceProcess) -> None:
    """The SDK's pager parses the list."""
    ids = {model.id for model in service.client().models.list()}
    assert set(EXAMPLE_MODELS) <= ids


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_retrieve_each(service: ServiceProcess, name: str) -> None:
    """GET one model by id through the SDK."""
    model = service.client().models.retrieve(name)
    assert model.id == name
    assert model.object == "model"


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_get_one_matches_list(service: ServiceProcess, prefix: str) -> None:
    """GET /models/<id> returns the same object the list holds."""
    with service.http() as http:
        listed = {m["id"]: m for m in http.get(f"{prefix}/models").json()["data"]}
        response = http.get(f"{prefix}/models/chat")
    assert response.status_code == 200
    assert response.json() == listed["chat"]


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_unknown_model_404(service: ServiceProcess, prefix: str) -> None:
    """An unknown id is OpenAI's model_not_found, as JSON."""
    with service.http() as http:
        response = http.get(f"{prefix}/models/no-such-model")
    assert_error(response, 404, code="model_not_found")


def test_unknown_model_sdk_raises_not_found(service: ServiceProcess) -> None:
    """The SDK maps it to NotFoundError."""
    with pytest.raises(openai.NotFoundError):
        service.client().models.retrieve("no-such-model")


def test_status_lists_models(service: ServiceProcess) -> None:
    """/status reports readiness and the same model ids."""
    with service.http() as http:
        status = http.get("/status").json()
        listed = [m["id"] for m in http.get("/v1/models").json()["data"]]
    assert status["status"] == "ready"
    assert sorted(status["models"]) == sorted(listed)
    assert status["failed"] == {}
