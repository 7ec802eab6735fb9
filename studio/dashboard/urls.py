from django.urls import path

from .views import bulk, overview, runs, tasks, tokens, workers

app_name = "dashboard"

urlpatterns = [
    path("", overview.home, name="home"),
    path("p/<slug:project>/", overview.overview, name="overview"),
    path("p/<slug:project>/tasks/", tasks.tasks, name="tasks"),
    path("p/<slug:project>/tasks/<str:task_id>/", tasks.launch, name="launch"),
    path("p/<slug:project>/runs/", runs.runs, name="runs"),
    path("p/<slug:project>/runs/bulk/", bulk.bulk, name="runs_bulk"),
    path("p/<slug:project>/runs/filters/", bulk.save_filter, name="save_filter"),
    path(
        "p/<slug:project>/runs/filters/<int:filter_id>/delete/",
        bulk.delete_filter,
        name="delete_filter",
    ),
    path("p/<slug:project>/operations/<str:operation_id>/", bulk.operation, name="operation"),
    path("p/<slug:project>/runs/<str:run_id>/", runs.run_detail, name="run"),
    path("p/<slug:project>/runs/<str:run_id>/events/", runs.run_events, name="run_events"),
    path("p/<slug:project>/runs/<str:run_id>/cancel/", runs.run_cancel, name="run_cancel"),
    path("p/<slug:project>/runs/<str:run_id>/logs.txt", runs.run_logs, name="run_logs"),
    path("p/<slug:project>/tokens/", tokens.tokens, name="tokens"),
    path(
        "p/<slug:project>/tokens/<int:token_id>/revoke/", tokens.revoke_token, name="revoke_token"
    ),
    path("p/<slug:project>/workers/", workers.workers, name="workers"),
    path("p/<slug:project>/workers/<int:worker_id>/drain/", workers.drain, name="worker_drain"),
]
