from django.urls import path

from .views import overview, runs, tasks, tokens, workflows

app_name = "dashboard"

urlpatterns = [
    path("", overview.home, name="home"),
    path("p/<slug:project>/", overview.overview, name="overview"),
    path("p/<slug:project>/tasks/", tasks.tasks, name="tasks"),
    path("p/<slug:project>/tasks/<str:task_id>/", tasks.launch, name="launch"),
    path("p/<slug:project>/runs/", runs.runs, name="runs"),
    path("p/<slug:project>/runs/<str:run_id>/", runs.run_detail, name="run"),
    path("p/<slug:project>/runs/<str:run_id>/events/", runs.run_events, name="run_events"),
    path("p/<slug:project>/runs/<str:run_id>/cancel/", runs.run_cancel, name="run_cancel"),
    path("p/<slug:project>/runs/<str:run_id>/logs.txt", runs.run_logs, name="run_logs"),
    path("p/<slug:project>/workflows/", workflows.workflows, name="workflows"),
    path("p/<slug:project>/workflows/<str:workflow_id>/", workflows.workflow, name="workflow"),
    path("p/<slug:project>/runs/<str:run_id>/steps/", workflows.run_panel, name="run_steps"),
    path(
        "p/<slug:project>/runs/<str:run_id>/approvals/<str:step_id>/",
        workflows.decide,
        name="run_decide",
    ),
    path("p/<slug:project>/runs/<str:run_id>/rerun/", workflows.rerun_workflow, name="run_rerun"),
    path("p/<slug:project>/tokens/", tokens.tokens, name="tokens"),
    path(
        "p/<slug:project>/tokens/<int:token_id>/revoke/", tokens.revoke_token, name="revoke_token"
    ),
]
