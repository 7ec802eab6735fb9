from runs.definitions import task

TRICKY = [
    "tab\there",
    "back\\slash \\n not a newline",
    "quote \" and 'single'",
    "unicode: żółć 🚀 中文",
    "carriage\rreturn",
    "<script>alert(1)</script>",
    "",
]


@task(name="Tricky output")
def run(ctx):
    for line in TRICKY:
        print(line)
    ctx.emit("tricky.event", {"text": "tab\t and \\ and \n newline", "nan": float("nan")})
    return {"lines": TRICKY}
