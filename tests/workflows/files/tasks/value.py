from runs.definitions import task


@task(name="Value")
def run(ctx):
    """Returns its input's `value` (or the whole input), and fails when asked to."""
    if ctx.input.get("fail"):
        raise RuntimeError(f"asked to fail: {ctx.input.get('fail')}")
    if ctx.attempt < ctx.input.get("succeed_on", 0):
        raise RuntimeError(f"attempt {ctx.attempt} failed")
    return ctx.input.get("value", ctx.input)
