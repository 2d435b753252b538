"""Typed entries (`run_api` / `run_api_async`): `POST /{model}/run` and the OpenAPI document, over real HTTP.

The wrappers are tests/engine/typed_wrappers: a BM25 search that returns pydantic models, an async entry with a
nested optional input, a sync generator, one that fails, and one whose signature cannot be served.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openapi_spec_validator
import pytest
import yaml

from openai_schema import require_spec
from support import ServiceProcess, assert_error, base_env, parse_sse, serve, wait_until


@pytest.fixture(scope="module")
def typed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    yield from serve(tmp_path_factory.mktemp("typed"), "typed", base_env(WRAPPERS_PACKAGE="typed_wrappers"))


@pytest.fixture(scope="module")
def document(typed_service: ServiceProcess) -> dict[str, Any]:
    with typed_service.http() as http:
        response = http.get("/openapi.json")
    assert response.status_code == 200, response.text
    return response.json()


def run(service: ServiceProcess, model: str, body: Any) -> httpx.Response:
    with service.http() as http:
        return http.post(f"/{model}/run", json=body)


def test_a_typed_entry_answers_with_its_declared_type(typed_service: ServiceProcess) -> None:
    result = run(typed_service, "search_docs", {"query": "Which framework has Flask's API?", "top_k": 1}).json()
    assert [passage["source"] for passage in result["result"]] == ["quart.md"]
    assert set(result["result"][0]) == {"text", "source", "score"} and result["result"][0]["score"] > 0
    assert len(run(typed_service, "search_docs", {"query": "async ASGI apps framework"}).json()["result"]) == 2, (
        "top_k's default"
    )
    said = run(typed_service, "shout", {"text": "hi", "times": 2, "style": {"suffix": "?"}}).json()
    assert said == {"result": {"said": "HI HI?"}}


@pytest.mark.parametrize(
    ("model", "body", "param"),
    [
        ("search_docs", {}, "query"),
        ("search_docs", {"query": "x", "top_k": "many"}, "top_k"),
        ("search_docs", {"query": "x", "topk": 3}, "topk"),
        ("shout", {"text": "hi", "style": {"upper": "loud"}}, "style.upper"),
        ("shout", {"text": "hi", "times": 11}, "times"),  # the wrapper's own OpenAIError
    ],
    ids=["missing", "wrong type", "unknown field", "nested", "refused by the wrapper"],
)
def test_a_bad_request_is_a_400_naming_the_field(
    typed_service: ServiceProcess, model: str, body: dict[str, Any], param: str
) -> None:
    error = assert_error(run(typed_service, model, body), 400, param=param)
    assert param.split(".")[0] in error["message"] or model == "shout"


def test_a_body_that_is_not_an_object_is_a_400(typed_service: ServiceProcess) -> None:
    with typed_service.http() as http:
        response = http.post("/search_docs/run", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert_error(response, 400)


def test_a_generator_streams_each_item_then_done(typed_service: ServiceProcess) -> None:
    with typed_service.http() as http, http.stream("POST", "/count_up/run", json={"upto": 3}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.read().decode())
    assert events.data == ['{"result":1}', '{"result":2}', '{"result":3}', "[DONE]"]


def test_a_failure_midstream_is_an_error_event_without_the_secret(typed_service: ServiceProcess) -> None:
    with typed_service.http() as http, http.stream("POST", "/count_up/run", json={"upto": 5, "fail_at": 3}) as streamed:
        text = streamed.read().decode()
    assert text.startswith('data: {"result":1}\n\ndata: {"result":2}\n\nevent: error\ndata: ')
    error = json.loads(text.split("event: error\ndata: ")[1])["error"]
    assert error["code"] == "run_failed" and "RuntimeError" in error["message"]
    assert "secret" not in text and "Traceback" not in text
    assert "The run of model 'count_up' (run_api) failed" in typed_service.log_tail()


def test_a_failing_pipeline_is_a_500_without_the_secret(typed_service: ServiceProcess) -> None:
    error = assert_error(run(typed_service, "fails", {"question": "?"}), 500, code="run_failed")
    assert "ValueError" in error["message"] and "request" in error["message"]
    assert "secret" not in json.dumps(error)
    assert "The run of model 'fails' (run_api) failed" in typed_service.log_tail()


def test_a_signature_that_cannot_be_served_fails_the_load(typed_service: ServiceProcess) -> None:
    with typed_service.http() as http:
        assert "takes_anything" in http.get("/status").json()["failed"]
    error = assert_error(run(typed_service, "takes_anything", {}), 503, code="model_failed_to_load")
    assert "takes *args or **kwargs" in error["message"]
    assert "takes *args or **kwargs" in typed_service.log_tail()


def test_the_rag_example_is_a_search_tool(offline_service: ServiceProcess) -> None:
    """The example a user starts from: its retriever as a tool, the only typed route of the examples."""
    with offline_service.http() as http:
        found = http.post("/rag/run", json={"query": "Which headers does Open WebUI send?", "top_k": 1}).json()
        assert [passage["title"] for passage in found["result"]] == ["Open WebUI"]
        assert_error(http.post("/chat/run", json={}), 404, param="model", code="model_not_found")
        document = http.get("/openapi.json").json()
    assert list(document["paths"]) == ["/rag/run"]
    assert document["paths"]["/rag/run"]["post"]["summary"].startswith("Search the documentation of this service")


def test_the_openapi_document_describes_each_typed_route(document: dict[str, Any]) -> None:
    openapi_spec_validator.validate(document)  # OpenAPI 3.1, by the validator tool clients' generators use
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/search_docs/run",
        "/shout/run",
        "/count_up/run",
        "/fails/run",
        "/count_words/run",
    }
    search = document["paths"]["/search_docs/run"]["post"]
    assert search["operationId"] == "search_docs" and search["summary"] == "Search the documentation."
    assert "best first" in search["description"]
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    assert "Passage" in document["components"]["schemas"] and "Style" in document["components"]["schemas"]
    streamed = document["paths"]["/count_up/run"]["post"]["responses"]["200"]["content"]
    assert list(streamed) == ["text/event-stream"]


OPENAI_PATHS = {
    "/v1/models",
    "/v1/models/{model}",
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/responses/{response_id}",
    "/v1/responses/{response_id}/cancel",
    "/v1/responses/{response_id}/input_items",
    "/v1/responses/compact",
    "/v1/conversations",
    "/v1/conversations/{conversation_id}",
    "/v1/conversations/{conversation_id}/items",
    "/v1/conversations/{conversation_id}/items/{item_id}",
    "/v1/files",
    "/v1/files/{file_id}",
    "/v1/files/{file_id}/content",
}


@pytest.fixture(scope="module")
def whole_document(typed_service: ServiceProcess) -> dict[str, Any]:
    with typed_service.http() as http:
        response = http.get("/openapi.json", params={"include": "openai"})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_whole_document_adds_the_openai_routes_under_their_own_tag(
    document: dict[str, Any], whole_document: dict[str, Any]
) -> None:
    """Tool clients register `/openapi.json` and make a tool of each operation: the OpenAI routes are only in the
    whole document, each tagged so, and the typed routes are the same in both."""
    openapi_spec_validator.validate(whole_document)
    assert set(whole_document["paths"]) == set(document["paths"]) | OPENAI_PATHS
    assert {path: whole_document["paths"][path] for path in document["paths"]} == document["paths"]
    operations = [
        operation
        for path, methods in whole_document["paths"].items()
        if path in OPENAI_PATHS
        for operation in methods.values()
    ]
    assert len(operations) == 22 and all(operation["tags"] == ["OpenAI API"] for operation in operations)
    chat = whole_document["paths"]["/v1/chat/completions"]["post"]
    assert chat["operationId"] == "createChatCompletion"
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert [parameter["name"] for parameter in whole_document["paths"]["/v1/files/{file_id}"]["get"]["parameters"]] == [
        "file_id"
    ]


def test_each_openai_operation_is_named_as_in_openais_description(whole_document: dict[str, Any]) -> None:
    """So a client finds each route's request and response schemas in OpenAI's published description."""
    with require_spec().open(encoding="utf-8") as handle:
        openai_paths = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["paths"]
    for path in OPENAI_PATHS:
        for method, operation in whole_document["paths"][path].items():
            published = openai_paths[path.removeprefix("/v1")][method]
            assert operation["operationId"] == published["operationId"], (method, path)


def test_an_unknown_include_is_a_400(typed_service: ServiceProcess) -> None:
    with typed_service.http() as http:
        assert_error(http.get("/openapi.json", params={"include": "everything"}), 400, param="include")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/search_docs/run", {"query": "hypercorn"}),
        ("/search_docs/run", {"query": "hypercorn", "top_k": 3}),
        ("/search_docs/run", {"top_k": 3}),
        ("/search_docs/run", {"query": 7}),
        ("/search_docs/run", {"query": "x", "extra": 1}),
        ("/shout/run", {"text": "a", "style": {"upper": False}}),
        ("/shout/run", {"text": "a", "style": {"upper": []}}),
        ("/shout/run", {"text": "a", "style": None}),
    ],
)
def test_each_route_accepts_what_its_schema_accepts(
    typed_service: ServiceProcess, document: dict[str, Any], path: str, body: dict[str, Any]
) -> None:
    """A client that builds requests from the document is never refused, and one that breaks it always is."""
    schema = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    resolver_document = {**schema, "components": document["components"]}
    valid = jsonschema.Draft202012Validator(resolver_document).is_valid(body)
    response = run(typed_service, path.split("/")[1], body)
    assert response.status_code == (200 if valid else 400), (valid, response.text)
    if valid:
        answer_schema = document["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        jsonschema.validate(response.json(), {**answer_schema, "components": document["components"]})


def test_api_keys_guard_the_typed_routes_and_the_document(tmp_path: Path) -> None:
    env = base_env(WRAPPERS_PACKAGE="typed_wrappers", API_KEYS="sk-typed")
    service = ServiceProcess("typed_keys", tmp_path, env, ready_path="/health/live").start()
    try:
        with service.http() as http:
            keyed = {"authorization": "Bearer sk-typed"}
            wait_until(lambda: http.post("/shout/run", json={"text": "a"}, headers=keyed).status_code != 503)
            assert_error(http.post("/shout/run", json={"text": "a"}), 401)
            assert_error(http.get("/openapi.json"), 401)
            assert http.post("/shout/run", json={"text": "a"}, headers=keyed).json() == {"result": {"said": "A!"}}
            document = http.get("/openapi.json", headers=keyed).json()
        assert document["security"] == [{"bearer": []}]
    finally:
        service.stop()


TEXT = b"The cat sat. A cat ran. Dogs bark.\n"


def test_a_file_parameter_takes_a_file_in_a_form_or_its_id_in_json(typed_service: ServiceProcess) -> None:
    """`document: StoredFile`: the file itself in multipart/form-data (stored, then passed), or an uploaded
    file's id in JSON; an unknown id is a 400 naming the parameter."""
    with typed_service.http() as http:
        form = http.post(
            "/count_words/run",
            files={"document": ("pets.txt", TEXT, "text/plain")},
            data={"word": "cat", "at_least": "1"},
        )
        assert form.json() == {"result": {"filename": "pets.txt", "count": 2}}, form.text
        uploaded = typed_service.client().files.create(file=("pets.txt", TEXT), purpose="user_data")
        by_id = http.post("/count_words/run", json={"document": uploaded.id, "word": "dogs"})
        assert by_id.json() == {"result": {"filename": "pets.txt", "count": 1}}
        assert_error(http.post("/count_words/run", json={"document": "file-nope", "word": "x"}), 400, param="document")
        stray = http.post("/count_words/run", files={"word": ("w.txt", b"cat")}, data={})
        assert_error(stray, 400, param="word")
        listed = {file.filename for file in typed_service.client().files.list()}
    assert "pets.txt" in listed, "the form's file went through the file store"


def test_the_document_describes_a_file_parameter_both_ways(document: dict[str, Any]) -> None:
    content = document["paths"]["/count_words/run"]["post"]["requestBody"]["content"]
    assert content["application/json"]["schema"]["properties"]["document"]["type"] == "string"
    form = content["multipart/form-data"]["schema"]["properties"]["document"]
    assert form == {"type": "string", "contentMediaType": "application/octet-stream"}
