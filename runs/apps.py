from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import lifecycle, notify, queue
        from .orchestration import hooks
        from .orchestration import queue as workflow_queue  # noqa: F401  (its Huey task)
        from .orchestration.sweeper import sweep_workflows
        from .worker import claim, sweeper

        # The Huey task is declared in every process (web to enqueue, worker to execute); what it
        # does is the worker's.
        queue.set_executor(claim.execute)
        # A run of a concurrency-limited task that leaves `running` frees a slot for the next.
        lifecycle.on_release(claim.free_slot)
        # Run notifications: an outbox row in the same transaction as the run's ending, with
        # the run in the API's wire shape.
        from .api.schemas import run_to_wire

        notify.use_wire_format(run_to_wire)
        lifecycle.on_terminal(notify.queue_notifications, phase="in_transaction")
        # A workflow run advances when one of its children ends.
        hooks.register()
        # ... and the sweeper finds those that did not.
        sweeper.also_sweep("workflows", sweep_workflows)
