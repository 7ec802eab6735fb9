"""`POST /hooks/{project}/{webhook_id}`: the public door of inbound webhooks.

No session and no API token: a request proves itself by its signature (runs.inbound). CSRF
does not apply by design: nothing here acts on a browser's cookies.
"""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from runs import inbound
from runs.api.schemas import run_to_wire


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
    body = answer.body
    if answer.run is not None:
        body = {**body, "run": run_to_wire(answer.run)}
    return _json(answer.status, body)


def _json(status: int, body: dict) -> HttpResponse:
    # DjangoJSONEncoder writes dates exactly as the API does (ninja's encoder is built on it).
    return HttpResponse(
        json.dumps(body, cls=DjangoJSONEncoder), status=status, content_type="application/json"
    )
