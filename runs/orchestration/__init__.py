"""Running workflows: creating workflow runs, advancing them, and the actions people and
clients take on them (approvals, signals, re-run from a failed step). The graph itself and its
references are `runs.workflows` (no Django); this package is the Django side."""
