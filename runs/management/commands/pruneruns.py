"""`manage.py pruneruns --older-than-days N`: delete finished runs (and their events) past retention."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from runs.models import (
    TERMINAL_STATUSES,
    NotificationOutbox,
    Project,
    Run,
    RunEvent,
    ScheduleOccurrence,
    WebhookDelivery,
)

BATCH = 500


class Command(BaseCommand):
    help = "Delete completed, failed and cancelled runs that finished more than N days ago, with their events."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-days",
            type=int,
            required=True,
            help="keep runs that finished more recently",
        )
        parser.add_argument("--project", help="only this project (slug or id)")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would go, delete nothing"
        )

    def handle(self, *args, older_than_days, project, dry_run, **options):
        if older_than_days < 1:
            raise CommandError("--older-than-days must be at least 1")
        cutoff = timezone.now() - timedelta(days=older_than_days)
        runs = Run.objects.filter(status__in=TERMINAL_STATUSES, completed_at__lt=cutoff)
        if project:
            found = Project.by_reference(project).first()
            if found is None:
                raise CommandError(f"No project {project!r} (give a slug or an id)")
            runs = runs.filter(project=found)
        if dry_run:
            count = runs.count()
            events = RunEvent.objects.filter(run__in=runs).count()
            deliveries = self._old_deliveries(runs, cutoff, project).count()
            self.stdout.write(
                f"Would delete {count} run(s) and {events} event(s) finished before {cutoff:%Y-%m-%d %H:%M} UTC."
            )
            self.stdout.write(f"Would delete {deliveries} webhook delivery record(s).")
            return
        total_runs = total_events = total_deliveries = 0
        # In batches, so a large backlog never holds one long transaction or lock.
        while ids := list(runs.values_list("pk", flat=True)[:BATCH]):
            total_events += RunEvent.objects.filter(run_id__in=ids).delete()[0]
            # Deliveries and notifications go with their runs.
            total_deliveries += WebhookDelivery.objects.filter(run_id__in=ids).delete()[0]
            NotificationOutbox.objects.filter(run_id__in=ids).exclude(state="pending").delete()
            total_runs += Run.objects.filter(pk__in=ids).delete()[0]
        # Deliveries that started no run (refused, filtered, duplicates) age out the same way.
        old = self._old_deliveries(runs, cutoff, project)
        while ids := list(old.values_list("pk", flat=True)[:BATCH]):
            total_deliveries += WebhookDelivery.objects.filter(pk__in=ids).delete()[0]
        NotificationOutbox.objects.filter(created_at__lt=cutoff).exclude(state="pending").delete()
        self.stdout.write(
            f"Deleted {total_runs} run(s) and {total_events} event(s) finished before {cutoff:%Y-%m-%d %H:%M} UTC."
        )
        self.stdout.write(f"Deleted {total_deliveries} webhook delivery record(s).")

        # Schedule ledgers age out with the runs (a buffered slot still waiting is kept).
        ledger = ScheduleOccurrence.objects.filter(recorded_at__lt=cutoff).exclude(
            outcome=ScheduleOccurrence.Outcome.BUFFERED
        )
        if project:
            ledger = ledger.filter(schedule__project=found)
        total_slots = 0
        while ids := list(ledger.values_list("pk", flat=True)[:BATCH]):
            total_slots += ScheduleOccurrence.objects.filter(pk__in=ids).delete()[0]
        self.stdout.write(f"Deleted {total_slots} schedule ledger row(s) recorded before then.")

    def _old_deliveries(self, runs, cutoff, project):
        """Deliveries of the runs going, and deliveries older than the cutoff without an active
        run (a duplicate points at a run that may still be kept: it stays while that run does)."""
        old = WebhookDelivery.objects.filter(
            Q(run__in=runs) | Q(received_at__lt=cutoff, run__isnull=True)
        )
        if project:
            old = old.filter(project__in=Project.by_reference(project))
        return old
