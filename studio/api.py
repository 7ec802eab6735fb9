"""The NinjaAPI object mounted at /api (routers live in runs/api.py)."""

from ninja import NinjaAPI

api = NinjaAPI(title="Studio API", version="1")
