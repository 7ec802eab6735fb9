"""Sign-in throttling's two hooks into django-axes: the username it records, and what a
locked-out sign-in sees."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def throttled_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The username a failed sign-in is counted against, as the database can store it.

    The sign-in form does not limit its length before authenticating, and django-axes records
    the name as given: a 5,000-character one was a 500 on PostgreSQL (its column holds 255).
    No real username is longer than 150 characters, so the cut merges nobody's count.
    """
    raw = (credentials or {}).get("username")
    if raw is None:
        raw = request.POST.get("username")
    if raw is None:
        return None
    return str(raw).replace("\x00", "")[:255]


def locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    minutes = settings.STUDIO_LOGIN_COOLOFF_MINUTES
    context = {
        "failure_limit": settings.STUDIO_LOGIN_FAILURE_LIMIT,
        "cooloff": f"{minutes:g} minute{'' if minutes == 1 else 's'}",
    }
    # 429: the client is asked to slow down; the page says for how long.
    return render(request, "registration/locked_out.html", context, status=429)
