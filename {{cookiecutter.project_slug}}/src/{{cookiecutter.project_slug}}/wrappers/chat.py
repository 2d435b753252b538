"""Model `chat`: a sync pipeline (prompt builder + chat generator) that answers in one piece, on both OpenAI APIs."""

from typing import Any

from haystack import Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.dataclasses import ChatMessage

from ..engine import (
    BasePipelineWrapper,
    chat_messages_from_openai_response,
    generation_kwargs,
    get_last_user_input_text,
    get_last_user_message,
    message_text,
)
from ..llm import make_chat_generator

# A Haystack prompt template (Jinja): the earlier turns go into the system message as plain values.
PROMPT = [
    ChatMessage.from_system(
        "You are a helpful assistant. Answer briefly."
        "{% if history %}\n\nThe conversation so far:\n"
        "{% for turn in history %}{{ turn.role }}: {{ turn.text }}\n{% endfor %}{% endif %}"
    ),
    ChatMessage.from_user("{{ question }}"),
]


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        self.pipeline = Pipeline()
        self.pipeline.add_component(
            "prompt_builder", ChatPromptBuilder(template=PROMPT, required_variables=["question"])
        )
        self.pipeline.add_component("llm", make_chat_generator())
        self.pipeline.connect("prompt_builder.prompt", "llm.messages")
        # Checks the components' settings (keys, URLs, timeouts) now: a wrong one fails the model's
        # load, visibly, instead of every request.
        self.pipeline.warm_up()

    def run_chat_completion(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> ChatMessage:
        """Runs in a worker thread; the reply (with its token usage) is sent as one message or one stream."""
        history = [{"role": m["role"], "text": message_text(m)} for m in messages[:-1] if m["role"] != "system"]
        return self.answer(get_last_user_message(messages) or "", history, body)

    def run_response(self, model: str, input_items: list[dict[str, Any]], body: dict[str, Any]) -> ChatMessage:
        """The same pipeline for the Responses API: earlier message items are the history, as above."""
        turns = [m for m in chat_messages_from_openai_response(input_items) if m.text and not m.is_from("system")]
        history = [{"role": m.role.value, "text": m.text} for m in turns[:-1]]
        return self.answer(get_last_user_input_text(input_items) or "", history, body)

    def answer(self, question: str, history: list[dict[str, Any]], body: dict[str, Any]) -> ChatMessage:
        result = self.pipeline.run(
            {
                "prompt_builder": {"question": question, "history": history},
                "llm": {"generation_kwargs": generation_kwargs(body)},
            }
        )
        return result["llm"]["replies"][0]
