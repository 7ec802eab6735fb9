"""Studio's own middleware: refuse what no view can handle, and the security headers."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


def reject_nul(get_response: Callable[[HttpRequest], HttpResponse]):
    """400 for a NUL character anywhere in the path or the query string of a page.

    No id, slug, filter or cursor of Studio's holds one, and PostgreSQL refuses to even compare
    a text column with a value that does (a DataError, so a 500), so such a request is answered
    before any view, the admin's included, puts it in a query. Form fields refuse NUL on their
    own, JSON bodies are checked by runs.validation, and the API validates each parameter
    itself, naming the field, so /api/ is left to it.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/") and (
            "\x00" in request.path
            or any(
                "\x00" in key or any("\x00" in v for v in values)
                for key, values in request.GET.lists()
            )
        ):
            return HttpResponseBadRequest(
                "the URL holds a NUL character", content_type="text/plain; charset=utf-8"
            )
        return get_response(request)

    return middleware


def content_security_policy(get_response: Callable[[HttpRequest], HttpResponse]):
    """Send settings.STUDIO_CSP on every response (unless a view set its own)."""
    policy = settings.STUDIO_CSP

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response

    return middleware
