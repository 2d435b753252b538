"""`GET /health/live` and `GET /health/ready`: probes for load balancers and Kubernetes, cheap and without keys.

Live: the process answers. Ready: every check in `services().readiness_checks` passes (the wrappers are
loaded; create_app lists them). Neither names a model.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import asyncio

from quart import Blueprint, Response, jsonify

from ..services import services

blueprint = Blueprint("health", __name__)

CHECK_TIMEOUT_SECONDS = 2.0  # a check that takes longer (a store that does not answer) counts as not ready


@blueprint.get("/health/live")
async def live() -> Response:
    return jsonify({"status": "live"})


@blueprint.get("/health/ready")
async def ready() -> Response:
    checks = await readiness()
    is_ready = all(outcome == "ok" for outcome in checks.values())
    response = jsonify({"status": "ready" if is_ready else "not ready", "checks": checks})
    response.status_code = 200 if is_ready else 503
    return response


async def readiness() -> dict[str, str]:
    """Each check's outcome: "ok", or what it reported (a check that failed or took too long: "failing")."""
    checks = services().readiness_checks
    outcomes: dict[str, str] = {}
    for name, check in checks.items():
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                outcomes[name] = await check() or "ok"
        except Exception:
            outcomes[name] = "failing"
    return outcomes
