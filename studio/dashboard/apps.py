from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The server-rendered dashboard: views, forms and template tags over the runs app."""

    name = "studio.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"
