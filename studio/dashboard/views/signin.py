"""What a locked-out sign-in sees (django-axes calls this once the failure limit is reached)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    minutes = settings.STUDIO_LOGIN_COOLOFF_MINUTES
    context = {
        "failure_limit": settings.STUDIO_LOGIN_FAILURE_LIMIT,
        "cooloff": f"{minutes:g} minute{'' if minutes == 1 else 's'}",
    }
    # 429: the client is asked to slow down; the page says for how long.
    return render(request, "registration/locked_out.html", context, status=429)
