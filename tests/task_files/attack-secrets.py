"""An attacker's task: tries to read Studio's secrets and reports what it got."""

import os

from runs.definitions import task


def attempt(fn):
    try:
        value = fn()
    except BaseException as exc:  # noqa: BLE001 - every way of failing is a success here
        return f"denied: {type(exc).__name__}: {exc}"
    return f"GOT: {str(value)[:80]}"


def read(path):
    with open(path, "rb") as f:
        return f.read(200)


@task(name="Attack: secrets")
def run(ctx):
    found = {path: attempt(lambda p=path: read(p)) for path in ctx.input["paths"]}
    found["worker environ"] = attempt(lambda: read(f"/proc/{ctx.input['worker_pid']}/environ"))
    # Any process's environment we can see, looking for Studio's settings.
    leaked = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"DATABASE_URL" in read(f"/proc/{pid}/environ") + read(f"/proc/{pid}/cmdline"):
                leaked.append(pid)
        except OSError:
            pass
    found["environ with DATABASE_URL"] = leaked
    found["visible pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    found["django"] = attempt(lambda: __import__("django.conf").conf.settings.SECRET_KEY)
    found["write /usr"] = attempt(lambda: open("/usr/studio-owned", "w"))
    found["write tasks dir"] = attempt(
        lambda: open(os.path.join(ctx.input["tasks_dir"], "x.py"), "w")
    )
    found["write /tmp"] = attempt(lambda: open("/tmp/mine", "w").write("x"))
    found["uid"] = os.getuid()
    return found
