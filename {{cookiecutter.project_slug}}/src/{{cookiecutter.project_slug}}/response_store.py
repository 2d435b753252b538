"""Finished responses, kept in memory so `previous_response_id` can continue a conversation.

Bounded: past `capacity` the least recently used response is forgotten, and a request that names it
gets 400 `previous_response_not_found`, as from OpenAI. With several replicas, keep this state in a
shared store instead (same three methods).
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class StoredResponse:
    response: dict[str, Any]
    input_items: list[dict[str, Any]]  # the whole conversation that led to it, earlier turns included


class ResponseStore:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._responses: OrderedDict[str, StoredResponse] = OrderedDict()
        self._lock = threading.Lock()

    def save(self, response: dict[str, Any], input_items: list[dict[str, Any]]) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._responses[response["id"]] = StoredResponse(response, input_items)
            self._responses.move_to_end(response["id"])
            while len(self._responses) > self.capacity:
                self._responses.popitem(last=False)

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            stored = self._responses.get(response_id)
            if stored is not None:
                self._responses.move_to_end(response_id)
            return stored

    def delete(self, response_id: str) -> bool:
        with self._lock:
            return self._responses.pop(response_id, None) is not None
