"""Studio's benchmarks, in one place: `manage.py bench` (`make bench`), one section alone with
`--only <section>` (`make bench ONLY=<section>`; several: `--only latency,throughput`).

Sections:
  latency     one at a time, raw Huey vs Studio: enqueue/create -> started (and -> completed)
  throughput  N at once, raw Huey vs Studio: items per second until the last one finished
  logs        one run printing 100,000 lines: time until they are all stored and the run is done
  dashboard   the dashboard's hot views, in-process, over 100,000 runs and a run of 100,000
              events: median and p95 server time and the number of SQL queries
  api         the REST API over HTTP (`manage.py serve`, wrk): GET a run, a quiet events poll
              and POST /api/runs beside a bare ninja endpoint of the same server

None of them touches your data: each group (the engine's three sections, the dashboard) runs in a
child process against its own scratch database (a temporary SQLite file, or a throw-away
PostgreSQL database next to DATABASE_URL's) and private queue names on the same queue storage.
"""

from __future__ import annotations

ENGINE_SECTIONS = ("latency", "throughput", "logs", "workflows", "scheduler")
DASHBOARD_SECTIONS = ("dashboard",)
API_SECTIONS = ("api",)
SECTIONS = (*ENGINE_SECTIONS, *DASHBOARD_SECTIONS, *API_SECTIONS)
