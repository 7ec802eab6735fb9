"""A reused process with limits of its own (so not a prepared sandbox): touches `mb` MB."""

from runs.definitions import task

COUNT = 0


@task(name="Reused, limited", reuse_process=True, limits={"memory_mb": 100})
def run(ctx):
    global COUNT
    COUNT += 1
    block = bytearray(ctx.input.get("mb", 1) * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return {"count": COUNT}
