"""Settings for the test suite: Studio's settings with a queue of the suite's own.

Worker processes started by the tests inherit these variables, so they consume this queue and
nothing else; a developer's `make run` worker never steals a test's runs (or the reverse).
"""

import atexit
import os
import shutil
import tempfile
import uuid

_session = uuid.uuid4().hex[:8]
os.environ.setdefault("STUDIO_QUEUE_NAME", f"studio-test-{_session}")
os.environ.setdefault(
    "STUDIO_HUEY_FILE", os.path.join(tempfile.gettempdir(), f"studio-test-huey-{_session}.sqlite3")
)

# Metrics of the test process and of the workers it starts, added up by /metrics.
_metrics_dir = os.path.join(tempfile.gettempdir(), f"studio-test-metrics-{_session}")
os.makedirs(_metrics_dir, exist_ok=True)
atexit.register(shutil.rmtree, _metrics_dir, True)
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _metrics_dir)

from studio.settings import *  # noqa: E402, F403

# A test database of this session's own, so two suites (a developer's and CI's, or two
# checkouts) can run at once without destroying each other's database.
_test_db = DATABASES["default"]  # noqa: F405
if _test_db["ENGINE"].endswith("sqlite3"):
    _test_db["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"studio-test-{_session}.sqlite3")
    }
else:
    _test_db["TEST"] = {"NAME": f"test_{_test_db['NAME']}_{_session}"}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
