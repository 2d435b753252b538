"""A setup() that waits until the file named by SETUP_GATE exists (at once without it): a wrapper loading slowly.

The health tests open the gate when they have seen what the service answers while it loads.
"""

import os
import time
from pathlib import Path

from {{ cookiecutter.project_slug }}.engine import BasePipelineWrapper

GATE_TIMEOUT_SECONDS = 120.0
ANSWER = "loaded at last"


class PipelineWrapper(BasePipelineWrapper):
    def setup(self) -> None:
        gate = os.environ.get("SETUP_GATE")
        deadline = time.monotonic() + GATE_TIMEOUT_SECONDS
        while gate and not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # a sync setup runs in a thread: the service answers meanwhile

    def run_chat_completion(self, model: str, messages: list[dict], body: dict) -> str:
        return ANSWER
