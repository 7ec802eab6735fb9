from django.contrib import admin
from django.urls import include, path

from studio import hooks
from studio.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("hooks/<str:project>/<str:webhook_id>", hooks.receive, name="webhook-receive"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("studio.dashboard.urls")),
]
