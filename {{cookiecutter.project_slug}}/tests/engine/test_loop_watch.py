"""An async wrapper that blocks the event loop is named in the log: its model, the request, the line, the time held.

Every other request of the process (health probes included) waits while the loop is held; without this line a
user sees slow probes and no cause.
"""

from __future__ import annotations

import re

from support import ServiceProcess, user, wait_until
from test_wrappers.blocks_loop import BLOCK_SECONDS


def held_line(service: ServiceProcess, request_id: str) -> str | None:
    """The loop watch's warning for `request_id`, once it is logged."""
    lines = service.log_tail(500_000).splitlines()
    return next((line for line in lines if "The event loop was held" in line and request_id in line), None)


def test_a_wrapper_that_blocks_the_loop_is_logged_with_its_model_and_request(test_service: ServiceProcess) -> None:
    request_id = "req-blocks-the-loop-1"
    completion = test_service.client().chat.completions.create(
        model="blocks_loop", messages=user("x"), extra_headers={"X-Request-Id": request_id}
    )
    assert completion.choices[0].message.content == "blocked"

    line = wait_until(lambda: held_line(test_service, request_id))
    assert line is not None, test_service.log_tail()
    assert f"[{request_id}]" in line, "logged as the request's own line"
    assert "by model 'blocks_loop'" in line
    assert "test_wrappers/blocks_loop.py:" in line and "in run_chat_completion_async" in line
    held = float(re.search(r"held for ([\d.]+) s", line).group(1))  # type: ignore[union-attr]
    assert held >= BLOCK_SECONDS - 0.5, line  # at least the block (less the watch's 0.1 s step), never less


def test_a_block_in_a_task_the_pipeline_started_is_logged_with_its_model_and_request(
    test_service: ServiceProcess,
) -> None:
    """`Pipeline.run_async` runs each component in a task of its own: the run's task is not the one holding the loop."""
    request_id = "req-blocks-in-a-step-1"
    completion = test_service.client().chat.completions.create(
        model="blocks_loop_in_a_step", messages=user("x"), extra_headers={"X-Request-Id": request_id}
    )
    assert completion.choices[0].message.content == "blocked in a step"
    line = wait_until(lambda: held_line(test_service, request_id))
    assert line is not None, test_service.log_tail()
    assert f"[{request_id}]" in line and "by model 'blocks_loop_in_a_step'" in line, line
    assert "test_wrappers/blocks_loop_in_a_step.py:" in line and "in run_async" in line, line
