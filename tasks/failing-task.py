"""Always fails, with a clear message: shows how failures look in the CLI, dashboard and API."""

from runs.definitions import task


class UpstreamUnavailable(RuntimeError):
    pass


@task(
    name="Failing task",
    description="Fails on purpose to show error reporting",
    input_schema={
        "type": "object",
        "properties": {"reason": {"type": "string", "default": "the upstream API answered 503"}},
    },
)
def run(ctx):
    print("contacting upstream...")
    raise UpstreamUnavailable(f"cannot sync: {ctx.input['reason']}")
