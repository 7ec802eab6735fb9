from django.urls import path

from .views import overview, runs, schedules, tasks, tokens

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
    path("p/<slug:project>/schedules/", schedules.schedules, name="schedules"),
    path("p/<slug:project>/schedules/new/", schedules.schedule_form, name="schedule_new"),
    path(
        "p/<slug:project>/schedules/preview/", schedules.schedule_preview, name="schedule_preview"
    ),
    path(
        "p/<slug:project>/schedules/<str:schedule_id>/", schedules.schedule_detail, name="schedule"
    ),
    path(
        "p/<slug:project>/schedules/<str:schedule_id>/edit/",
        schedules.schedule_form,
        name="schedule_edit",
    ),
    path(
        "p/<slug:project>/schedules/<str:schedule_id>/<str:action>/",
        schedules.schedule_action,
        name="schedule_action",
    ),
    path("p/<slug:project>/tokens/", tokens.tokens, name="tokens"),
    path(
        "p/<slug:project>/tokens/<int:token_id>/revoke/", tokens.revoke_token, name="revoke_token"
    ),
]
