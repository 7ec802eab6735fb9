from runs.definitions import task


@task(name="Unserializable")
def run(ctx):
    return {"when": object()}
