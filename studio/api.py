"""The NinjaAPI object mounted at /api: bearer-token auth, the JSON parser and the error shape.

Every non-2xx answer has the body `{"error": {"message", "code", "detail"}}`, whichever layer
produced it (auth, body parsing, validation, the views, an unknown URL, a wrong method or a bug).
Routers live in the apps (runs/api.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.utils import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import re_path
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer

from runs.api import ApiError, tokens
from runs.api import router as runs_router
from runs.api.operations import router as operations_router
from runs.api.schedules import router as schedules_router
from runs.api.webhooks import router as webhooks_router
from runs.api.workflows import router as workflows_router
from runs.db import fewer_health_checks
from runs.models import ApiToken
from runs.validation import loads_json

log = logging.getLogger("runs.api")

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class BodyTooLarge(Exception):
    pass


class StrictJSONParser(Parser):
    """JSON bodies only, within the size limit; NaN, Infinity and numbers beyond a float's range
    (`1e400`) are refused, as is nesting too deep to parse."""

    def parse_body(self, request: HttpRequest) -> Any:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.STUDIO_MAX_BODY_BYTES:
            raise BodyTooLarge
        body = request.body
        if len(body) > settings.STUDIO_MAX_BODY_BYTES:
            raise BodyTooLarge
        return loads_json(body)


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`; the principal is the ApiToken, whose project scopes all.

    Every write is a POST, so a read-only token is refused here, before the body is read: a
    read-only client learns 403 whatever it sent.
    """

    def __call__(self, request: HttpRequest) -> ApiToken | None:
        # HttpBearer reads `request.headers`, which first builds a dict of every header: the
        # one header from META is the same answer (scheme, then all after the first space).
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return super().__call__(request)  # no token, or not Bearer: refused as before
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        fewer_health_checks()
        if "\x00" in token:
            return None  # no token holds one, and PostgreSQL cannot even be asked
        api_token = tokens.authenticate(token.strip())
        if api_token is None:
            return None
        api_token.touch()
        if request.method not in SAFE_METHODS and not api_token.can_write:
            raise ApiError(403, "this API token is read-only", code="read_only_token")
        return api_token


class StudioAPI(NinjaAPI):
    def _get_urls(self):
        urls = [_json_not_allowed(pattern) for pattern in super()._get_urls()]
        # Anything else under /api/ is a JSON 404 too, not Django's HTML page.
        urls.append(re_path(r"^.*$", _unknown_url, name="not-found"))
        return urls


def _json_not_allowed(pattern):
    """Wrap ninja's path view so a wrong method answers 405 in the error shape."""
    view = pattern.callback

    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            allowed = response.get("Allow", "")
            response = error_response(
                405, f"method {request.method} not allowed here", "method_not_allowed"
            )
            response["Allow"] = allowed
        return response

    wrapped.csrf_exempt = True
    pattern.callback = wrapped
    return pattern


def _unknown_url(request: HttpRequest) -> HttpResponse:
    return error_response(404, "not found", "not_found")


def error_response(status: int, message: str, code: str, detail: Any = None) -> HttpResponse:
    body = {"error": {"message": message, "code": code, "detail": detail}}
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


api = StudioAPI(
    title="Studio API",
    version="1",
    description="Task runs over HTTP, in the Veryfront Runs wire format. "
    "Send `Authorization: Bearer <token>`; a token belongs to one project.",
    parser=StrictJSONParser(),
    auth=TokenAuth(),
)
api.add_router("/", runs_router)
api.add_router("/", webhooks_router)
api.add_router("/", schedules_router)
api.add_router("/", workflows_router)
api.add_router("/", operations_router)

if settings.STUDIO_BENCH_ENDPOINT:
    # The benchmark's floor (runs/bench/api.py): ninja's routing and rendering behind the same
    # middleware, and nothing of Studio's. Mounted only in the benchmark's own server.
    @api.get("/_bench/bare", auth=None, include_in_schema=False)
    def bench_bare(request):
        return {"ok": True}


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    return error_response(exc.status_code, exc.message, exc.code, exc.detail)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    response = error_response(
        401,
        "missing, unknown or revoked API token: send Authorization: Bearer <token>",
        "unauthorized",
    )
    response["WWW-Authenticate"] = 'Bearer realm="studio"'
    return response


@api.exception_handler(AuthorizationError)
def _forbidden(request, exc):
    return error_response(403, str(exc) or "forbidden", "forbidden")


def _too_large() -> HttpResponse:
    return error_response(
        413, f"request body is larger than {settings.STUDIO_MAX_BODY_BYTES} bytes", "body_too_large"
    )


@api.exception_handler(RequestDataTooBig)
def _request_too_big(request, exc):
    # Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE before the parser runs.
    return _too_large()


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    cause = exc.__cause__
    if isinstance(cause, BodyTooLarge | RequestDataTooBig):
        return _too_large()
    if exc.status_code == 400 and cause is not None:
        return error_response(400, f"request body is not valid JSON: {cause}", "malformed_json")
    return error_response(exc.status_code, exc.message, _code_for_status(exc.status_code))


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    errors = [_field_error(e) for e in exc.errors]
    message = "invalid request: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return error_response(422, message, "validation_error", errors)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return error_response(404, "not found", "not_found")


@api.exception_handler(Exception)
def _unexpected(request, exc):
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is away (restarting, unreachable): a clear, retryable answer, not a 500.
        log.warning("database unavailable in %s %s: %s", request.method, request.path, exc)
        response = error_response(
            503, "the database is unavailable; try again shortly", "service_unavailable"
        )
        response["Retry-After"] = "5"
        return response
    log.exception("unhandled error in %s %s", request.method, request.path)
    return error_response(500, "internal server error", "internal_error")


def _code_for_status(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "body_too_large",
        429: "rate_limited",
    }.get(status, "error")


_UNION_TAGS = {"task", "workflow"}


def _field_error(error: dict) -> dict:
    """One pydantic error as {field, message, rule}, with the field as the client wrote it."""
    loc = [str(part) for part in error.get("loc", ())]
    source, rest = (loc[0], loc[1:]) if loc else ("body", [])
    if source == "body" and rest:
        rest = rest[1:]  # the view's parameter name
        if rest and rest[0] in _UNION_TAGS:
            rest = rest[1:]  # the discriminator's branch
    field = ".".join(rest) or source
    return {
        "field": field,
        "message": error.get("msg", "is invalid"),
        "rule": error.get("type", "invalid"),
    }
