"""An async wrapper that blocks the event loop is named in the log: its model, the request, the line, the time held.

Every other request of the process (health probes included) waits while the loop is held; without this line a
user sees slow probes and no cause.
"""

from __future__ import annotations

import re

from support import ServiceProcess, user, wait_until
from test_wrappers.blocks_loop import BLOCK_SECONDS


def test_a_wrapper_that_blocks_the_loop_is_logged_with_its_model_and_request(test_service: ServiceProcess) -> None:
    request_id = "req-blocks-the-loop-1"
    completion = test_service.client().chat.completions.create(
        model="blocks_loop", messages=user("x"), extra_headers={"X-Request-Id": request_id}
    )
    assert completion.choices[0].message.content == "blocked"

    def warning() -> str | None:
        lines = test_service.log_tail(500_000).splitlines()
        return next((line for line in lines if "The event loop was held" in line and request_id in line), None)

    line = wait_until(warning)
    assert line is not None, test_service.log_tail()
    assert f"[{request_id}]" in line, "logged as the request's own line"
    assert "by model 'blocks_loop'" in line
    assert "test_wrappers/blocks_loop.py:" in line and "in run_chat_completion_async" in line
    held = float(re.search(r"held for ([\d.]+) s", line).group(1))  # type: ignore[union-attr]
    assert held >= BLOCK_SECONDS - 0.5, line  # at least the block (less the watch's 0.1 s step), never less
