"""`manage.py run_huey`: Huey's consumer, plus what Studio needs around it.

- SIGTERM drains: no new runs are claimed; running ones get STUDIO_SHUTDOWN_GRACE_SECONDS to
  finish, then are stopped and handed back to the queue.
- A sweeper thread finds runs that a dead worker or a lost message left behind.
- A thread takes bulk operations (cancel / re-run many runs) batch by batch.
- The process registers in the worker registry and heartbeats (runs/worker/registry.py).
- Task definitions are loaded before the workers start, so every fork starts warm.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from huey.consumer import Consumer
from huey.contrib.djhuey.management.commands.run_huey import Command as HueyCommand

from runs.definitions import discover
from runs.metrics import multiprocess_dir
from runs.notify import NotifierThread
from runs.operations import OperationsThread
from runs.schedules.loop import start_scheduler
from runs.worker import claim as engine
from runs.worker import reuse
from runs.worker.registry import Registration
from runs.worker.sweeper import SweeperThread

log = logging.getLogger("runs.worker")

OPERATIONS_POLL_SECONDS = 0.5  # how soon a bulk cancel or re-run is picked up


class StudioConsumer(Consumer):
    def start(self):
        # Started from this (main) thread: the zygote dies with the process, not with a thread.
        # First, so that STUDIO_SANDBOX=required stops the worker before it says it is ready.
        engine.fork_server().start()
        found = discover()
        log.info(
            "worker ready: %d task(s), %d discovery error(s), %d worker thread(s)",
            len(found.tasks),
            len(found.errors),
            self.workers,
        )
        # Registered before the first claim, idle or not; heartbeats on a thread of its own.
        self._registration = Registration(capacity=self.workers)
        self._registration.start()
        self._sweeper_stop = threading.Event()
        SweeperThread(settings.STUDIO_SWEEP_SECONDS, self._sweeper_stop).start()
        NotifierThread(self._sweeper_stop).start()  # run notifications from the outbox
        start_scheduler()  # stops by itself when the drain begins
        OperationsThread(OPERATIONS_POLL_SECONDS, self._sweeper_stop).start()
        # Huey sets its signal handlers only after its worker threads have started, so a SIGTERM
        # in between killed a worker that was already running a run, without draining it.
        self._set_signal_handlers()
        super().start()

    def stop(self, graceful=False):
        # SIGTERM drains with the grace period; SIGINT (Ctrl+C) drains with none: running runs
        # are stopped and handed back at once. Either way the threads are joined, so no run is
        # left half-finished when the process exits. A second Ctrl+C stops without waiting.
        grace = settings.STUDIO_SHUTDOWN_GRACE_SECONDS if graceful else 0
        log.info(
            "worker stopping: running runs get %ss to finish before they are handed back", grace
        )
        engine.begin_drain(grace)
        self._sweeper_stop.set()
        super().stop(graceful=True)
        reuse.retire_idle(everything=True)  # warm processes of reuse_process tasks
        self._registration.stop()


class Command(HueyCommand):
    help = "Run Studio's worker: the Huey consumer that executes runs (any number of hosts)."

    def handle(self, *args, **options):
        from huey.consumer_options import ConsumerConfig
        from huey.contrib.djhuey import HUEY

        # Before the first metric is made: the counters of this process go where a web process
        # on this host can add them up (serve has set it already; a lone worker uses var/).
        multiprocess_dir(settings.VAR_DIR)

        consumer_options = dict(settings.HUEY.get("consumer", {}))
        consumer_options.update(
            {k: v for k, v in options.items() if v is not None and k in ConsumerConfig._fields}
        )
        config = ConsumerConfig(**consumer_options)
        config.validate()
        huey_logger = logging.getLogger("huey")
        if not huey_logger.handlers:
            config.setup_logger(huey_logger)
        StudioConsumer(HUEY, **config.values).run()
