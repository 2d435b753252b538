"""Model `chat`: a sync pipeline (prompt builder + chat generator) that answers in one piece."""

from typing import Any

from haystack import Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.dataclasses import ChatMessage

from ..llm import make_chat_generator
from ..messages import get_last_user_message, message_text
from ..sampling import generation_kwargs
from ..wrapper import BasePipelineWrapper

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

    def run_chat_completion(self, model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> ChatMessage:
        """Runs in a worker thread; the reply (with its token usage) is sent as one message or one stream."""
        history = [{"role": m["role"], "text": message_text(m)} for m in messages[:-1] if m["role"] != "system"]
        question = get_last_user_message(messages) or ""
        result = self.pipeline.run(
            {
                "prompt_builder": {"question": question, "history": history},
                "llm": {"generation_kwargs": generation_kwargs(body)},
            }
        )
        return result["llm"]["replies"][0]
