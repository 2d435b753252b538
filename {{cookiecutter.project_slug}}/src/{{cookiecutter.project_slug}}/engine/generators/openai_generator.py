"""`ReasoningOpenAIChatGenerator`: Haystack's `OpenAIChatGenerator`, faster when streaming, keeping the reasoning.

`llm.py` chooses it; this module is the machinery under it (why each part exists: docs/streaming-helpers.md).
It overrides private methods of Haystack 3.x (`_prepare_api_call`, `_handle_stream_response`,
`_handle_async_stream_response`): check it when you upgrade Haystack.

- The request goes out as Haystack prepared it, without the SDK's per-message transform (`_PreparedRequests`),
  and is retried by `retry_wait`'s rule (OPENAI_MAX_RETRIES times, never after a long `Retry-After`). A streamed
  request counts as failed until its first event arrived (`_LineStream`), so a stall before it is retried too.
- A failure while the answer is read becomes the SDK's error for its kind (`upstream_errors.py` tells the client):
  a stall or a cut connection, an error event, an event that is not JSON.
- A streamed answer is read straight from its JSON (`_ChunkReader`), with the reasoning kept, and the final
  reply is built as the chunks pass (`_ReplyBuilder`), not from all of them kept to the end.
- A run whose client asked for a whole answer (`stream: false`) asks the server for a whole answer too, and hands
  its streaming callback the chunks a stream would have held: nobody reads them as they come, and a whole answer
  carries the server's token count, which some servers never stream (llama-cpp-python's).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio
import inspect
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from haystack import component
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.dataclasses import ChatMessage, ComponentInfo, ReasoningContent, StreamingChunk, ToolCall, ToolCallDelta
from openai import APIConnectionError, APIError, APIStatusError, AsyncOpenAI, AsyncStream, OpenAI, Stream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ..parsing.images import put_image_urls_back
from ..runs.runner import answer_read_whole
from ..runs.streamed_tool_calls import StreamedToolCalls
from .upstream_errors import TRANSPORT_ERRORS, UpstreamErrorEvent, UpstreamInvalidAnswer, as_api_error

logger = logging.getLogger(__name__)

# A server that asks to wait longer than this before a retry is not retried: its 429 goes straight to the
# client, with its Retry-After (see `retry_wait`).
MAX_RETRY_WAIT_SECONDS = 2.0


@component
class ReasoningOpenAIChatGenerator(OpenAIChatGenerator):
    """OpenAIChatGenerator that reads a streamed answer straight from its JSON, keeps the reasoning,
    and asks for token usage when streaming.

    - Speed: the openai SDK turns every streamed chunk into typed objects that Haystack then turns into a
      `StreamingChunk`; that was more than half the CPU a stream costs (measured against a fast upstream).
      Here each `data:` line is parsed with `json.loads` and becomes a `StreamingChunk` at once, and the
      request goes out as Haystack prepared it, without the SDK's per-message transform (`_PreparedRequests`).
      Auth, base URL and timeouts are still the SDK's; retries follow `retry_wait`.
    - Reasoning: DeepSeek-style reasoning models (on vLLM, Ollama, llama.cpp) stream their thinking in
      `delta.reasoning_content` (or `delta.reasoning`), which Haystack 3.4 drops. Here it becomes a
      `StreamingChunk` with `reasoning`, and the final reply carries it too.

    The base class is named explicitly below because Haystack's `@component` rebuilds the class, which
    breaks a bare `super()`.
    """

    def warm_up(self) -> None:
        if self.client is None:
            OpenAIChatGenerator.warm_up(self)
            self.client.chat.completions = _PreparedRequests(self.client)

    async def warm_up_async(self) -> None:
        if self.async_client is None:
            await OpenAIChatGenerator.warm_up_async(self)
            self.async_client.chat.completions = _PreparedRequests(self.async_client)

    def _prepare_api_call(self, **kwargs: Any) -> dict[str, Any]:
        """Ask for token usage when streaming (servers send none otherwise); never when not, where it is refused.

        A run whose answer is read whole (`runner.answer_read_whole`) does not stream: the answer comes whole, and
        `_handle_stream_response` hands it to the streaming callback as chunks.
        Images given by URL go out as their URL (Haystack would send them as empty data URLs: see `parsing/images.py`).
        A length limit given as `max_completion_tokens` (the Responses API's `max_output_tokens` becomes it) also
        goes as `max_tokens` to a server other than OpenAI's: see `also_as_max_tokens`.
        """
        api_args = OpenAIChatGenerator._prepare_api_call(self, **kwargs)
        put_image_urls_back(kwargs["messages"], api_args["messages"])
        if api_args.get("stream") and answer_read_whole():
            api_args["stream"] = False
        if api_args.get("stream"):
            api_args.setdefault("stream_options", {"include_usage": True})
        if (limit := api_args.get("max_completion_tokens")) is not None and also_as_max_tokens(self._base_url()):
            api_args.setdefault("max_tokens", limit)
        return api_args

    def _base_url(self) -> str:
        """The server's URL, found as the SDK finds it: the component's own, else OPENAI_BASE_URL, else OpenAI's."""
        return self.api_base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"

    def _handle_stream_response(self, chat_completion: Stream, callback: Callable[[StreamingChunk], None]) -> Any:
        if isinstance(chat_completion, ChatCompletion):  # asked whole: see `_prepare_api_call`
            reader = _ChunkReader(None, ComponentInfo.from_component(self))
            for chunk in reader.whole(chat_completion.model_dump()):
                callback(chunk)
            return [reader.reply.message()]
        request = chat_completion.response.request
        reader = _ChunkReader(request, ComponentInfo.from_component(self))
        if isinstance(chat_completion, _LineStream):
            lines = chat_completion.lines()
        else:  # a request the SDK itself sent (see `_PreparedRequests.create`)
            lines = _sdk_errors_from(chat_completion.response.iter_lines(), request)
        try:
            for line in lines:
                for chunk in reader.feed(line):
                    callback(chunk)
        finally:
            # Also when the callback raises (the client went away): stop reading the upstream now.
            chat_completion.close()
        return [reader.reply.message()]

    async def _handle_async_stream_response(self, chat_completion: AsyncStream, callback: Any) -> Any:
        if isinstance(chat_completion, ChatCompletion):  # asked whole: see `_prepare_api_call`
            reader = _ChunkReader(None, ComponentInfo.from_component(self))
            for chunk in reader.whole(chat_completion.model_dump()):
                if inspect.isawaitable(result := callback(chunk)):
                    await result
            return [reader.reply.message()]
        request = chat_completion.response.request
        reader = _ChunkReader(request, ComponentInfo.from_component(self))
        if isinstance(chat_completion, _AsyncLineStream):
            lines = chat_completion.lines()
        else:  # a request the SDK itself sent (see `_PreparedRequests.create`)
            lines = _sdk_errors_from_async(chat_completion.response.aiter_lines(), request)
        try:
            async for line in lines:
                for chunk in reader.feed(line):
                    if inspect.isawaitable(result := callback(chunk)):
                        await result
        finally:
            # shield: when the run is cancelled (the client went away), the close must still happen.
            await asyncio.shield(_close_async(lines, chat_completion))
        return [reader.reply.message()]


def _sdk_errors_from(lines: Iterator[str], request: Any) -> Iterator[str]:
    """`lines`, with the HTTP library's errors (a read timeout, a cut connection) raised as the SDK's."""
    try:
        yield from lines
    except TRANSPORT_ERRORS as error:
        raise as_api_error(error, request) from error


async def _sdk_errors_from_async(lines: AsyncIterator[str], request: Any) -> AsyncIterator[str]:
    """`_sdk_errors_from` for an async stream."""
    try:
        async for line in lines:
            yield line
    except TRANSPORT_ERRORS as error:
        raise as_api_error(error, request) from error


async def _close_async(lines: AsyncIterator[str], stream: AsyncStream) -> None:
    await lines.aclose()  # type: ignore[attr-defined]
    await stream.close()


class _LineStream(Stream[ChatCompletionChunk]):
    """A streamed answer whose SSE lines `_ChunkReader` reads; its head is read when the request is posted.

    `read_head` reads up to the first `data:` line inside the retry loop of `_post`: an LLM server that accepts a
    streamed request and then sends nothing, or cuts it before its first event, is retried like a refused request.
    Once an event arrived nothing is retried (its output may already be on its way to the client).
    """

    _lines: Iterator[str] | None = None
    _head: tuple[str, ...] = ()

    def read_head(self) -> None:
        self._lines = _sdk_errors_from(self.response.iter_lines(), self.response.request)
        head = []
        for line in self._lines:
            head.append(line)
            if line.startswith("data:"):
                break
        self._head = tuple(head)

    def lines(self) -> Iterator[str]:
        yield from self._head
        if self._lines is not None:
            yield from self._lines

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()  # type: ignore[attr-defined]
        Stream.close(self)


class _AsyncLineStream(AsyncStream[ChatCompletionChunk]):
    """`_LineStream` for the async client."""

    _lines: AsyncIterator[str] | None = None
    _head: tuple[str, ...] = ()

    async def read_head(self) -> None:
        self._lines = _sdk_errors_from_async(self.response.aiter_lines(), self.response.request)
        head = []
        async for line in self._lines:
            head.append(line)
            if line.startswith("data:"):
                break
        self._head = tuple(head)

    async def lines(self) -> AsyncIterator[str]:
        for line in self._head:
            yield line
        if self._lines is not None:
            async for line in self._lines:
                yield line

    async def close(self) -> None:
        if self._lines is not None:
            await self._lines.aclose()  # type: ignore[attr-defined]
        await AsyncStream.close(self)


class _PreparedRequests:
    """Stands in for the client's `chat.completions`: `create` posts the request Haystack prepared as it is.

    The SDK's own `create` first walks the whole request through its typed-dict transform. For the plain
    JSON Haystack builds that changes nothing, yet it costs ~1 ms for one message and ~0.55 ms for each
    further one (measured: 23 ms for 40 messages), on the event loop in async runs, before every request;
    a chat UI sends the whole conversation each turn. The request still goes through the client, so auth,
    base URL, timeouts and error types are the SDK's; retries follow `retry_wait`. Anything else (`parse`, or
    a request holding SDK or pydantic objects) goes to the SDK as before.
    """

    def __init__(self, client: OpenAI | AsyncOpenAI) -> None:
        self._client = client
        self._sdk = client.chat.completions
        self._stream_class = _AsyncLineStream if isinstance(client, AsyncOpenAI) else _LineStream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sdk, name)

    def parse(self, **arguments: Any) -> Any:
        """Haystack asks for `parse` when a request wants structured output without streaming. A JSON schema given
        as plain JSON (what the service passes on) needs none of the SDK's parsing, whose checks would refuse a
        client's non-strict tools beside it: it is posted like any other request."""
        if isinstance(arguments.get("response_format"), dict):
            return self.create(**arguments)
        return self._sdk.parse(**arguments)

    def create(self, **arguments: Any) -> Any:
        body = {name: value for name, value in arguments.items() if name not in REQUEST_OPTIONS}
        if not all(isinstance(value, PLAIN_JSON) for value in body.values()):
            return self._sdk.create(**arguments)
        # As in `create`: None means "not given" for the extra_* options and "no timeout" for `timeout`.
        options = {
            REQUEST_OPTIONS[name]: value
            for name, value in arguments.items()
            if name in REQUEST_OPTIONS and (value is not None or name == "timeout")
        }
        options["max_retries"] = 0  # retried below, by `retry_wait`
        post = partial(
            self._client.post,
            "/chat/completions",
            body=body,
            options=options,
            cast_to=ChatCompletion,
            stream=bool(body.get("stream")),
            stream_cls=self._stream_class,
        )
        if isinstance(self._client, AsyncOpenAI):
            return _post_async(post, self._client.max_retries, self._request)
        return _post(post, self._client.max_retries, self._request)

    def _request(self) -> Any:
        """The request, for the error of an answer the SDK could not parse (an `openai.APIError` needs one)."""
        return self._client._client.build_request("POST", self._client.base_url.join("chat/completions"))


def _post(post: Callable[[], Any], retries: int, request: Callable[[], Any]) -> Any:
    """`post()`, tried again up to `retries` times when `retry_wait` allows it; a stream once its first event came."""
    for attempt in range(retries + 1):
        try:
            answer = _answer(post, request)
            if isinstance(answer, _LineStream):
                try:
                    answer.read_head()
                except BaseException:
                    answer.close()
                    raise
            return answer
        except APIError as error:
            wait = retry_wait(error, attempt)
            if wait is None or attempt == retries:
                raise
        time.sleep(wait)
    raise AssertionError("unreachable")


async def _post_async(post: Callable[[], Awaitable[Any]], retries: int, request: Callable[[], Any]) -> Any:
    """`_post` for the async client."""
    for attempt in range(retries + 1):
        try:
            try:
                answer = _checked(await post(), request)
            except json.JSONDecodeError as error:
                raise _invalid_answer(error.doc, request) from error
            if isinstance(answer, _AsyncLineStream):
                try:
                    await answer.read_head()
                except BaseException:
                    await asyncio.shield(answer.close())
                    raise
            return answer
        except APIError as error:
            wait = retry_wait(error, attempt)
            if wait is None or attempt == retries:
                raise
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")


def _answer(post: Callable[[], Any], request: Callable[[], Any]) -> Any:
    try:
        return _checked(post(), request)
    except json.JSONDecodeError as error:
        raise _invalid_answer(error.doc, request) from error


def _checked(answer: Any, request: Callable[[], Any]) -> Any:
    """A whole answer the SDK could not parse comes back as text (or raises): a server failure like any other."""
    if isinstance(answer, str):
        raise _invalid_answer(answer, request)
    return answer


def _invalid_answer(text: str, request: Callable[[], Any]) -> UpstreamInvalidAnswer:
    """The error for an answer that is not JSON; its start goes to the log, never to the client."""
    return UpstreamInvalidAnswer(
        f"The answer is not the JSON of a chat completion: {text[:200]!r}", request(), body=None
    )


# Hosts that refuse `max_tokens` for their reasoning models ("use max_completion_tokens instead"): OpenAI's own.
OPENAI_HOSTS = ("api.openai.com",)
OPENAI_HOST_SUFFIXES = (".openai.azure.com",)


def also_as_max_tokens(base_url: str) -> bool:
    """Whether a `max_completion_tokens` limit also goes out as `max_tokens`: to every server but OpenAI's.

    OpenAI deprecated `max_tokens` for `max_completion_tokens` and refuses it for its reasoning models. Local
    servers differ: llama.cpp's llama-server and vLLM take both names, while llama-cpp-python's server and Ollama
    take only `max_tokens` and ignore the newer name silently (the answer runs on to the model's own end).
    Both names with the same value are right everywhere but at OpenAI.
    """
    host = (urlsplit(base_url).hostname or "").lower()
    return host not in OPENAI_HOSTS and not host.endswith(OPENAI_HOST_SUFFIXES)


def retry_wait(error: APIError, attempt: int) -> float | None:
    """Seconds to wait before trying a failed LLM call again, or None when another try would not help.

    Like the SDK's rule (connection errors, 408, 409, 429 and 5xx, unless the server says `x-should-retry:
    false`), except for a server that asks to wait longer than MAX_RETRY_WAIT_SECONDS: the SDK would wait up to
    two minutes on every retry, holding the client for an answer that is then often a failure anyway. The
    service passes such a 429 on at once, with its `Retry-After` (see `upstream_errors.py`): the client decides.
    """
    backoff = 0.5 * 2**attempt
    if isinstance(error, APIConnectionError):  # timeouts included
        return backoff
    if not isinstance(error, APIStatusError):
        return None
    headers, status = error.response.headers, error.status_code
    if headers.get("x-should-retry") == "false" or not (status in (408, 409, 429) or status >= 500):
        return None
    asked = _seconds_asked(headers)
    if asked is None:
        return backoff
    return asked if asked <= MAX_RETRY_WAIT_SECONDS else None


def _seconds_asked(headers: Any) -> float | None:
    """The wait a server asks for in `retry-after-ms` or `retry-after` (an HTTP date counts as long)."""
    for name, per_second in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(float(value) / per_second, 0.0)
        except ValueError:
            return float("inf")
    return None


# `create`'s keyword arguments that are request options rather than body fields, by their names in `post`.
REQUEST_OPTIONS = {
    "extra_headers": "headers",
    "extra_query": "params",
    "extra_body": "extra_json",
    "timeout": "timeout",
}
PLAIN_JSON = (dict, list, str, int, float, bool, type(None))


# OpenAI's finish reasons as Haystack names them; "function_call" is the legacy name of "tool_calls".
HAYSTACK_FINISH_REASON = {"stop": "stop", "length": "length", "content_filter": "content_filter"}
HAYSTACK_FINISH_REASON |= {"tool_calls": "tool_calls", "function_call": "tool_calls"}


class _ChunkReader:
    """Turns the lines of a Chat Completions event stream into Haystack `StreamingChunk`s.

    Follows OpenAIChatGenerator's own conversion, so the chunks and the final reply (text, tool calls,
    usage, finish reason) are what Haystack would have built.
    """

    def __init__(self, request: Any, info: ComponentInfo) -> None:
        self.request = request  # for the APIError of an error event
        self.info = info
        self.chunk_count = 0
        self.reply = _ReplyBuilder()
        self.data_lines: list[str] = []
        self.event = ""
        self.done = False

    def feed(self, line: str) -> list[StreamingChunk]:
        """The chunks that one line of the event stream completes (most lines complete none)."""
        if self.done or line.startswith(":"):
            return []
        if line:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                self.data_lines.append(value)
            elif field == "event":
                self.event = value
            return []
        if not self.data_lines:
            return []
        data, event = "\n".join(self.data_lines), self.event
        self.data_lines, self.event = [], ""
        if data.startswith("[DONE]"):
            self.done = True
            return []
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as error:
            raise UpstreamInvalidAnswer(f"An event is not JSON: {data[:200]!r}", self.request, body=None) from error
        if isinstance(payload, dict) and (payload.get("error") or event == "error"):
            error = payload.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            message = str(message or "The LLM server reported an error mid-stream")
            raise UpstreamErrorEvent(message, self.request, body=error)
        if event or not isinstance(payload, dict):
            return []  # named events are not chat completion chunks
        return self._read(payload)

    def whole(self, answer: dict[str, Any]) -> list[StreamingChunk]:
        """The chunks a stream of `answer`, a whole chat completion, would have held, in its order: the reasoning,
        the text (with its logprobs), each tool call, the finish, then the usage."""
        choice = (answer.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        choices: list[dict[str, Any]] = []
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            choices.append({"delta": {"reasoning_content": reasoning}})
        if message.get("content"):
            choices.append({"delta": {"content": message["content"]}, "logprobs": choice.get("logprobs")})
        for index, call in enumerate(message.get("tool_calls") or ()):
            choices.append({"delta": {"tool_calls": [{**call, "index": index}]}})
        choices.append({"delta": {}, "finish_reason": choice.get("finish_reason")})
        chunks = [chunk for one in choices for chunk in self._read({"model": answer.get("model"), "choices": [one]})]
        if answer.get("usage"):
            chunks += self._read({"model": answer.get("model"), "choices": [], "usage": answer["usage"]})
        return chunks

    def _read(self, payload: dict[str, Any]) -> list[StreamingChunk]:
        new = self._chunks_from(payload)
        self.chunk_count += len(new)
        for chunk in new:
            self.reply.add(chunk)
        return new

    def _chunks_from(self, payload: dict[str, Any]) -> list[StreamingChunk]:
        meta: dict[str, Any] = {
            "model": payload.get("model"),
            # UTC: local time costs a look at the time zone file per call, which showed in profiles.
            "received_at": datetime.now(UTC).isoformat(),
            "usage": payload.get("usage"),
        }
        choices = payload.get("choices") or []
        if not choices:  # the usage chunk
            return [StreamingChunk(content="", component_info=self.info, index=None, meta=meta)]
        choice = choices[0]
        delta = choice.get("delta") or {}
        reason = choice.get("finish_reason")
        meta |= {"index": choice.get("index", 0), "tool_calls": delta.get("tool_calls"), "finish_reason": reason}
        if choice.get("logprobs"):
            meta["logprobs"] = choice["logprobs"]
        finish = HAYSTACK_FINISH_REASON.get(reason) if reason else None
        out: list[StreamingChunk] = []
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out.append(
                StreamingChunk(
                    content="", reasoning=ReasoningContent(reasoning), index=0, component_info=self.info, meta=meta
                )
            )
        if tool_calls := delta.get("tool_calls"):
            calls = [_tool_call_delta(call) for call in tool_calls]
            out.append(
                StreamingChunk(
                    content=delta.get("content") or "",
                    component_info=self.info,
                    index=calls[0].index,
                    tool_calls=calls,
                    start=calls[0].tool_name is not None,
                    finish_reason=finish,
                    meta=meta,
                )
            )
            return out
        content = delta.get("content")
        if content or not out or finish:
            # Like Haystack: a content block has index 0; role-only and finish-only chunks have none.
            index = None if content is None or delta.get("role") is not None else 0
            start = self.chunk_count + len(out) == 1
            out.append(
                StreamingChunk(
                    content=content or "",
                    component_info=self.info,
                    index=index,
                    start=start,
                    finish_reason=finish,
                    meta=meta,
                )
            )
        return out


class _ReplyBuilder:
    """The final reply of a streamed run, built as the chunks pass.

    Haystack keeps every chunk until the end to build it; a long answer then holds hundreds of chunks,
    each with its own `meta`, per open stream (about 0.4 MB for 600 chunks). This keeps only the parts.
    """

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls = StreamedToolCalls()
        self.logprobs: list[Any] = []
        self.meta: dict[str, Any] = {"model": None, "index": 0, "finish_reason": None}
        self.meta |= {"completion_start_time": None, "usage": None}

    def add(self, chunk: StreamingChunk) -> None:
        self.text.append(chunk.content)
        if chunk.reasoning is not None:
            self.reasoning.append(chunk.reasoning.reasoning_text)
        for delta in chunk.tool_calls or ():
            self.tool_calls.add(delta.index, delta.id, delta.tool_name, delta.arguments)
        if chunk.meta.get("logprobs"):
            self.logprobs.append(chunk.meta["logprobs"])
        self.meta["model"] = chunk.meta.get("model")
        self.meta["completion_start_time"] = self.meta["completion_start_time"] or chunk.meta.get("received_at")
        self.meta["finish_reason"] = chunk.finish_reason or self.meta["finish_reason"]
        self.meta["usage"] = chunk.meta.get("usage") or self.meta["usage"]

    def message(self) -> ChatMessage:
        tool_calls = []
        for call in self.tool_calls.calls():
            try:
                arguments = json.loads(text) if (text := call.arguments) else {}
            except json.JSONDecodeError:
                logger.warning("Skipping tool call %s (%s): its arguments are not valid JSON", call.id, call.name)
                continue
            tool_calls.append(ToolCall(id=call.id or "", tool_name=call.name, arguments=arguments))
        reasoning = ReasoningContent("".join(self.reasoning)) if self.reasoning else None
        meta = self.meta | ({"logprobs": self.logprobs} if self.logprobs else {})
        return ChatMessage.from_assistant(
            text="".join(self.text) or None, tool_calls=tool_calls, reasoning=reasoning, meta=meta
        )


def _tool_call_delta(call: dict[str, Any]) -> ToolCallDelta:
    function = call.get("function") or {}
    return ToolCallDelta(
        index=call.get("index", 0),
        id=call.get("id"),
        tool_name=function.get("name"),
        arguments=function.get("arguments") or None,
    )
