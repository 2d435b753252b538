"""The offline stand-in (`OfflineChatGenerator`, when OPENAI_API_KEY is unset) and what it answers: it reads the prompt.

So that a pipeline can be judged without a key, RAG included, the answer repeats the question and quotes the
lines of the prompt's context that share a word with it, best first:

    [offline: set OPENAI_API_KEY for a real model] You said: What is the cat called?
    From the context:
    > [1] handbook.txt: ... The lighthouse keeper's cat is called Marmalade ...

The question is the last user message; when that message spans several lines (a prompt template put the
documents above the question), it is its last line that ends in "?". The context is the system messages and
the other lines of that message. The same prompt always gets the same answer.

It runs on the event loop when a pipeline streams there, so its work is bounded whatever the prompt: it reads at
most SCANNED_CHARS of each message (the start of a system message, the end of the question's) and repeats at most
ECHOED_CHARS of the question. A 20 MB message held the loop for 46 s before (the echo streamed word by word), then
0.5 s more while Haystack's `MockChatGenerator` counted every word of it for its usage (`OfflineChatGenerator`).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import re

from haystack import component
from haystack.components.generators.chat import MockChatGenerator
from haystack.dataclasses import ChatMessage

OFFLINE_NOTE = "[offline: set OPENAI_API_KEY for a real model]"
QUOTED_LINES = 3
QUOTE_CHARS = 240  # a longer line is quoted around its first word in common with the question
SCANNED_CHARS = 100_000  # of each message
ECHOED_CHARS = 500  # of the question
WORD = re.compile(r"\w+")
# Words too common to tie a line to the question, split as the question is.
COMMON_WORDS = frozenset(
    WORD.findall(
        "a an and are as at be but by can could did do does for from had has have how i if in is it its me my no "
        "not of on or our so tell than that the their them then there these they this those to was we were what "
        "when where which who whom why will with would you your"
    )
)


@component
class OfflineChatGenerator(MockChatGenerator):
    """Haystack's `MockChatGenerator`, with a usage estimate whose work is bounded whatever the prompt.

    The estimate is Haystack's (whitespace-separated words) for a message up to SCANNED_CHARS; a longer one's words
    are counted in its first SCANNED_CHARS and scaled to its length. Haystack's counted all 4 million words of a
    20 MB message on the event loop. It overrides a private method of Haystack 3.x: check it when you upgrade.
    """

    @staticmethod
    def _estimate_usage(messages: list[ChatMessage], reply: ChatMessage) -> dict[str, int]:
        prompt_tokens = sum(estimated_words(message.text or "") for message in messages)
        completion_tokens = estimated_words(reply.text or "")
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }


def estimated_words(text: str) -> int:
    """The whitespace-separated words of `text`, counted in its first SCANNED_CHARS, scaled to its length."""
    if len(text) <= SCANNED_CHARS:
        return len(text.split())
    return round(len(text[:SCANNED_CHARS].split()) * len(text) / SCANNED_CHARS)


def answer_from_prompt(messages: list[ChatMessage]) -> str:
    """The offline answer: say so, repeat the question, and quote the context that matches it."""
    question, context = question_and_context(messages)
    echoed = question if len(question) <= ECHOED_CHARS else question[:ECHOED_CHARS].rstrip() + "..."
    answer = f"{OFFLINE_NOTE} You said: {echoed}"
    quotes = lines_about(question, context)
    if quotes:
        answer += "\nFrom the context:\n" + "\n".join(f"> {quote}" for quote in quotes)
    return answer


def question_and_context(messages: list[ChatMessage]) -> tuple[str, list[str]]:
    context = [line for m in messages if m.is_from("system") for line in (m.text or "")[:SCANNED_CHARS].splitlines()]
    question = next((m.text for m in reversed(messages) if m.is_from("user") and m.text), "")
    if len(question) > SCANNED_CHARS:  # its end, from a word's start
        question = question[-SCANNED_CHARS:].partition(" ")[2]
    question = question.strip()
    lines = question.splitlines()
    asked = next((n for n in range(len(lines) - 1, -1, -1) if lines[n].rstrip().endswith("?")), None)
    if len(lines) > 1 and asked is not None:
        question = lines[asked].strip()
        context += lines[:asked] + lines[asked + 1 :]
    return question, [line.strip() for line in context if line.strip()]


def lines_about(question: str, context: list[str]) -> list[str]:
    """The QUOTED_LINES lines of `context` with the most words of `question`, best first (ties: in order)."""
    wanted = _words(question) - COMMON_WORDS
    scored = [(len(wanted & _words(line)), number) for number, line in enumerate(context)]
    best = sorted((-score, number) for score, number in scored if score)[:QUOTED_LINES]
    return [_quote(context[number], wanted) for _, number in best]


def _words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def _quote(line: str, wanted: set[str]) -> str:
    if len(line) <= QUOTE_CHARS:
        return line
    first = min(match.start() for match in WORD.finditer(line.lower()) if match.group() in wanted)
    start = max(0, min(first - QUOTE_CHARS // 3, len(line) - QUOTE_CHARS))
    quote = line[start : start + QUOTE_CHARS]
    return ("..." if start else "") + quote + ("..." if start + QUOTE_CHARS < len(line) else "")
