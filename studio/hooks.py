"""`POST /hooks/{project}/{webhook_id}`: the public door of inbound webhooks.

No session and no API token: a request proves itself by its signature (runs.inbound). CSRF
does not apply by design: nothing here acts on a browser's cookies.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from runs import inbound


@csrf_exempt
def receive(request: HttpRequest, project: str, webhook_id: str) -> HttpResponse:
    if request.method != "POST":
        response = _json(
            405,
            {"error": {"message": "send a POST", "code": "method_not_allowed", "detail": None}},
        )
        response["Allow"] = "POST"
        return response
    answer = inbound.receive(request, project, webhook_id)
    return _json(answer.status, answer.body)


def _json(status: int, body: dict) -> HttpResponse:
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")
