import asyncio

from runs.definitions import task


@task(name="Async")
async def run(ctx):
    await asyncio.sleep(0.01)
    print("async done")
    return {"async": True}
