import sys

from runs.definitions import task


@task(
    name="Chatty",
    input_schema={
        "type": "object",
        "properties": {"lines": {"type": "integer"}, "width": {"type": "integer"}},
    },
)
def run(ctx):
    width = ctx.input.get("width", 0)
    out = sys.stdout
    for i in range(ctx.input.get("lines", 10)):
        out.write(f"line {i} {'x' * width}\n")
    return {"printed": ctx.input.get("lines", 10)}
