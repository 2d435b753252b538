"""`GET /metrics`: the service's metrics in Prometheus' text format (see observability/metrics.py for what they mean).

Registered unless METRICS=off; with METRICS=keyed it needs one of API_KEYS, like the API.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

from quart import Blueprint, Response

from ..observability import metrics

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
async def scrape() -> Response:
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
