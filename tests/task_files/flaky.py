from runs.definitions import task


@task(
    name="Flaky", input_schema={"type": "object", "properties": {"succeed_on": {"type": "integer"}}}
)
def run(ctx):
    print(f"attempt {ctx.attempt}")
    if ctx.attempt < ctx.input.get("succeed_on", 99):
        raise RuntimeError(f"attempt {ctx.attempt} failed")
    return {"attempt": ctx.attempt}
