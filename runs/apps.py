from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from . import definitions, lifecycle, metrics, notify, queue, sandboxing
        from .models import Run, RunEvent
        from .orchestration import hooks
        from .orchestration import queue as workflow_queue  # noqa: F401  (its Huey task)
        from .orchestration.sweeper import sweep_workflows
        from .worker import claim, sweeper

        # The Huey task is declared in every process (web to enqueue, worker to execute); what it
        # does is the worker's.
        queue.set_executor(claim.execute)
        # A run of a concurrency-limited task that leaves `running` frees a slot for the next.
        lifecycle.on_release(claim.free_slot)
        # Studio's own processes never import task files: a sandboxed process does (README).
        definitions.use_sandboxed_discovery(sandboxing.task_loader)
        # Run notifications: an outbox row in the same transaction as the run's ending, with
        # the run in the API's wire shape.
        from .api.schemas import run_to_wire

        notify.use_wire_format(run_to_wire)
        lifecycle.on_terminal(
            notify.queue_notifications,
            phase="in_transaction",
            only_if=notify.has_targets,
            only_if_sql=notify.has_targets_sql,
        )
        # A workflow run advances when one of its children ends.
        hooks.register()
        # ... and the sweeper finds those that did not.
        sweeper.also_sweep("workflows", sweep_workflows)
        # Metrics: counted from hooks, so every way a run is created or ends is counted once.
        lifecycle.on_terminal(metrics.run_finished, phase="after_commit")
        post_save.connect(_count_created_run, sender=Run, dispatch_uid="metrics-run-created")
        post_save.connect(_count_event, sender=RunEvent, dispatch_uid="metrics-event-created")


def _count_created_run(sender, instance, created, **kwargs) -> None:
    if created:
        from django.db import transaction

        from . import metrics

        transaction.on_commit(lambda: metrics.run_created(instance))


def _count_event(sender, instance, created, **kwargs) -> None:
    # Single events saved one by one (run.created); batches are counted in insert_events.
    if created:
        from . import metrics

        metrics.events_written(1)
