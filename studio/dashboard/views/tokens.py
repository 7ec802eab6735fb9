"""API tokens of a project (admins only): create (the secret is shown once), list, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from runs.models import ApiToken

from ..forms import TokenForm
from ..permissions import Role, get_access

# The new secret waits in the (server-side, database-backed) session for exactly one read:
# never in a cookie, a message or a URL, and gone after the page that shows it.
NEW_SECRET_KEY = "dashboard_new_token"


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request, project: str):
    access = get_access(request, project, Role.ADMIN)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        created, secret = ApiToken.issue(
            access.project,
            form.cleaned_data["name"],
            read_only=form.cleaned_data["read_only"],
            created_by=request.user.get_username(),
        )
        request.session[NEW_SECRET_KEY] = {
            "project": str(access.project.pk),
            "token": created.pk,
            "secret": secret,
        }
        # Post/redirect/get: a reload of the next page neither re-posts nor re-shows the secret.
        return redirect("dashboard:tokens", project=access.project.slug)

    created = secret = None
    pending = request.session.pop(NEW_SECRET_KEY, None) if request.method == "GET" else None
    if pending and pending.get("project") == str(access.project.pk):
        created = access.project.tokens.filter(pk=pending.get("token")).first()
        secret = pending.get("secret") if created else None
    response = render(
        request,
        "tokens/tokens.html",
        {
            "access": access,
            "project": access.project,
            "form": form,
            "tokens": access.project.tokens.all(),
            "created": created,
            "secret": secret,
            "nav": "tokens",
        },
        status=422 if form.is_bound else 200,  # bound here means the post was invalid
    )
    # The page may carry a secret: no cache (browser back button, proxies) may keep it.
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def revoke_token(request, project: str, token_id: int):
    access = get_access(request, project, Role.ADMIN)
    token = get_object_or_404(ApiToken, pk=token_id, project=access.project)
    if token.is_active:
        token.revoke()
        messages.success(request, f"Token “{token.name}” revoked. Clients using it now get 401.")
    else:
        messages.info(request, f"Token “{token.name}” was already revoked.")
    return redirect("dashboard:tokens", project=access.project.slug)
