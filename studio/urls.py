from django.contrib import admin
from django.urls import include, path

from studio.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("studio.dashboard.urls")),
]

# A 404 that keeps the project's navigation and lists the user's projects.
handler404 = "studio.dashboard.views.errors.not_found"
