from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.urls import include, path

from studio import hooks
from studio.api import api


def needs_email(view):
    """Password reset mails a link: without a mail server configured the pages could only
    pretend to, so they do not exist (404) until EMAIL_HOST is set."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not settings.EMAIL_HOST:
            raise Http404("password reset needs EMAIL_HOST")
        return view(request, *args, **kwargs)

    return wrapped


# django.contrib.auth.urls, spelled out so that password reset can be switched off.
accounts = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "password_reset/",
        needs_email(auth_views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path(
        "password_reset/done/",
        needs_email(auth_views.PasswordResetDoneView.as_view()),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        needs_email(auth_views.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        needs_email(auth_views.PasswordResetCompleteView.as_view()),
        name="password_reset_complete",
    ),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("hooks/<str:project>/<str:webhook_id>", hooks.receive, name="webhook-receive"),
    path("accounts/", include(accounts)),
    path("", include("studio.dashboard.urls")),
]

# A 404 that keeps the project's navigation and lists the user's projects.
handler404 = "studio.dashboard.views.errors.not_found"
