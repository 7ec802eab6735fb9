from django.urls import path

from .views import (
    bulk,
    notifications,
    overview,
    runs,
    schedules,
    tasks,
    tokens,
    webhooks,
    workers,
    workflows,
)

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
    path("p/<slug:project>/webhooks/", webhooks.webhooks, name="webhooks"),
    path("p/<slug:project>/webhooks/<str:webhook_id>/", webhooks.webhook_detail, name="webhook"),
    path(
        "p/<slug:project>/webhooks/<str:webhook_id>/edit/",
        webhooks.webhook_edit,
        name="webhook_edit",
    ),
    path(
        "p/<slug:project>/webhooks/<str:webhook_id>/rotate/",
        webhooks.webhook_rotate,
        name="webhook_rotate",
    ),
    path(
        "p/<slug:project>/webhooks/<str:webhook_id>/test/",
        webhooks.webhook_test,
        name="webhook_test",
    ),
    path(
        "p/<slug:project>/webhooks/<str:webhook_id>/delete/",
        webhooks.webhook_delete,
        name="webhook_delete",
    ),
    path(
        "p/<slug:project>/webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/redeliver/",
        webhooks.webhook_redeliver,
        name="webhook_redeliver",
    ),
    path("p/<slug:project>/notifications/", notifications.notifications, name="notifications"),
    path(
        "p/<slug:project>/notifications/<str:notification_id>/",
        notifications.notification_detail,
        name="notification",
    ),
    path(
        "p/<slug:project>/notifications/<str:notification_id>/edit/",
        notifications.notification_edit,
        name="notification_edit",
    ),
    path(
        "p/<slug:project>/notifications/<str:notification_id>/test/",
        notifications.notification_test,
        name="notification_test",
    ),
    path(
        "p/<slug:project>/notifications/<str:notification_id>/delete/",
        notifications.notification_delete,
        name="notification_delete",
    ),
    path("p/<slug:project>/workers/", workers.workers, name="workers"),
    path("p/<slug:project>/workers/<int:worker_id>/drain/", workers.drain, name="worker_drain"),
]
