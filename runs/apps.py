from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the Huey task in every process: web (to enqueue) and worker (to execute).
        from . import queue  # noqa: F401
        from .orchestration import hooks  # noqa: F401

        # A workflow run advances when one of its children ends.
        hooks.register()
