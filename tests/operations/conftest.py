"""The dashboard personas (admin, operator, viewer, outsider) and `login`, for these tests too."""

from tests.dashboard.conftest import login, operator, outsider, owner, viewer  # noqa: F401
