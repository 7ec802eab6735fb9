"""An example webhook file: GitHub push events to main start a sync.

Its secret is the value of STUDIO_WEBHOOK_SECRET_GITHUB (never in this file). Until that
variable is set, every request to /hooks/<project>/deploy-on-push is refused with 401.
"""

webhook = {
    "name": "Sync on push to main",
    "description": "GitHub push events on main start task:sync-data",
    "target": "task:sync-data",
    "payload_to": "config",
    "scheme": "github",
    "secret_env": "STUDIO_WEBHOOK_SECRET_GITHUB",
    "event_filter": {
        "mode": "all",
        "conditions": [
            {"path": "headers.x-github-event", "operator": "equals", "value": "push"},
            {"path": "ref", "operator": "equals", "value": "refs/heads/main"},
        ],
    },
}
