import sys

from runs.definitions import task


@task(
    name="Echo",
    input_schema={
        "type": "object",
        "properties": {"lines": {"type": "array", "items": {"type": "string"}}},
    },
)
def run(ctx):
    for line in ctx.input.get("lines", []):
        print(line)
    print("to stderr", file=sys.stderr)
    ctx.emit("custom.thing", {"n": 1})
    ctx.progress(1, 2, message="half")
    return {
        "echo": ctx.input,
        "config": ctx.config,
        "project": ctx.project_id,
        "run": ctx.run_id,
        "env_secret": ctx.env.get("SECRET_KEY"),
        "os_secret": __import__("os").environ.get("SECRET_KEY"),
    }
