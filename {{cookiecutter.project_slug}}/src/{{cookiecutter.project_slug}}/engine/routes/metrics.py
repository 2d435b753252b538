"""`GET /metrics`: the service's metrics in Prometheus' text format (see metrics.py for what they mean).

Registered unless METRICS=off; with METRICS=keyed it needs one of API_KEYS, like the API.
"""

from quart import Blueprint, Response

from ..observability import metrics

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
async def scrape() -> Response:
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
