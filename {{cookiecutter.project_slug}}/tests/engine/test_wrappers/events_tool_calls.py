"""Internal events: text, two tool calls streamed in pieces, and usage."""

from collections.abc import Iterator

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper, TextDelta, ToolCallDelta, Usage

TEXT = "Calling tools."
CALLS = [
    {"id": "call_weather", "name": "get_weather", "arguments": '{"city": "Paris"}'},
    {"id": "call_time", "name": "get_time", "arguments": '{"tz": "UTC"}'},
]
USAGE = (5, 9)


class PipelineWrapper(BasePipelineWrapper):
    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> Iterator[object]:
        yield TextDelta(text=TEXT)
        for index, call in enumerate(CALLS):
            yield ToolCallDelta(index=index, id=call["id"], name=call["name"], arguments="")
            arguments = call["arguments"]
            middle = len(arguments) // 2
            yield ToolCallDelta(index=index, id=None, name=None, arguments=arguments[:middle])
            yield ToolCallDelta(index=index, id=None, name=None, arguments=arguments[middle:])
        yield Usage(prompt_tokens=USAGE[0], completion_tokens=USAGE[1])
