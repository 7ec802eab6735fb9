"""Always fails, with a clear message: shows how failures look in the CLI, dashboard and API."""

from runs.definitions import task


class UpstreamUnavailable(RuntimeError):
    pass


def call_upstream(reason: str) -> dict:
    raise UpstreamUnavailable(f"cannot sync: {reason}")


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
    answer = call_upstream(ctx.input["reason"])  # the traceback marks this call with ^^^
    return answer
