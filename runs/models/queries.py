"""The queries everyone asks of runs: whose they are, which match a filter, and a page of them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import models

from .ids import is_run_id
from .paging import KeysetPage, Position, keyset_page
from .search import matching


class RunQuerySet(models.QuerySet):
    def owned_by(self, project: Any) -> RunQuerySet:
        """The runs of one project (a Project or its id)."""
        return self.filter(project=project)

    def matching(
        self,
        *,
        status: str | Iterable[str] | None = None,
        target: str | None = None,
        kind: str | None = None,
        trigger_kind: str | None = None,
        parent_run_id: str | None = None,
        root_only: bool | None = None,
        created_after: datetime | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
    ) -> RunQuerySet:
        """The filters of the API's and the dashboard's run lists; None means "any".

        `status` is one status or several (the dashboard's "active"); `created_after` is
        exclusive, `created_from` inclusive (a day's start), `created_before` exclusive."""
        runs = self
        if isinstance(status, str):
            runs = runs.filter(status=status)
        elif status is not None:
            runs = runs.filter(status__in=list(status))
        exact = {"target": target, "kind": kind, "trigger_kind": trigger_kind}
        exact["parent_run_id"] = parent_run_id
        runs = runs.filter(**{name: value for name, value in exact.items() if value is not None})
        if root_only:  # a workflow's 1,000 map items do not flood the list
            runs = runs.filter(parent_run__isnull=True)
        if created_after is not None:
            runs = runs.filter(created_at__gt=created_after)
        if created_from is not None:
            runs = runs.filter(created_at__gte=created_from)
        if created_before is not None:
            runs = runs.filter(created_at__lt=created_before)
        return runs

    def search(self, text: str) -> RunQuerySet:
        """A run id finds that run; other text is looked for in id, name, target, input and the
        error's message (on PostgreSQL through a trigram index: see runs.models.search)."""
        if not text:
            return self
        if is_run_id(text):
            return self.filter(pk=text)
        return matching(self, text)

    def keyset(
        self, *, limit: int, before: Position | None = None, after: Position | None = None
    ) -> KeysetPage:
        """One page, newest first, cut at a position (see runs.models.paging)."""
        return keyset_page(self, limit=limit, before=before, after=after)
