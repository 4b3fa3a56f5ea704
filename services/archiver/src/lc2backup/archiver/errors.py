"""archiver's errors. The API turns each ``ApiRefusal`` into its status and a JSON body ``{"detail", ...}``.

::

    ArchiverError
     └── ApiRefusal               a request the API answers with a 4xx
          ├── Unauthenticated     401, with ``WWW-Authenticate: Bearer``
          ├── Forbidden           403: the tenant may not use that project
          └── Unprocessable       422, with every problem and its field
"""

from __future__ import annotations

from lc2backup.domain import Problem


class ArchiverError(Exception):
    pass


class ApiRefusal(ArchiverError):
    status = 400


class Unauthenticated(ApiRefusal):
    status = 401


class Forbidden(ApiRefusal):
    status = 403


class Unprocessable(ApiRefusal):
    """Input that passed the schema but not our rules (cross-field checks, a forged cursor)."""

    status = 422

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("invalid request")
        self.problems = problems
