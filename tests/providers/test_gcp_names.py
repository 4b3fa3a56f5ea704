"""The GCP provider's names and how it reads ``instanceId`` and Google's errors: pure functions, judged against
the rules the APIs document (transfer job names, Cloud SQL instance names), not against our own output."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from google.api_core import exceptions as core
from googleapiclient.errors import HttpError
from httplib2 import Response

from lc2backup.providers.errors import PermanentProviderError, TransientProviderError
from lc2backup.providers.gcp import InstanceRef, description_of, restore_job_name, transfer_job_name
from lc2backup.providers.gcp.cloudsql import engine_of
from lc2backup.providers.gcp.errors import GcpCall, api_status, is_busy
from lc2backup.providers.gcp.names import restore_description
from lc2backup.providers.gcp.sqladmin import operation_failure

# STS: "must start with transferJobs/ … end with a letter or a number … no more than 128 characters";
# non-POSIX jobs must not start with transferJobs/OPI
JOB_RULE = re.compile(r"^transferJobs/(?!OPI)[A-Za-z0-9._~-]*[A-Za-z0-9]$")


@pytest.mark.parametrize(
    "backup_id", ["0b9f3c1e-6d0a-5c55-9e1a-5d3c2b1a0f99", "a", "x" * 300, "OPI-1", "-_-", "retail/prd:1"]
)
def test_transfer_job_names_follow_sts_rules_and_are_stable(backup_id: str) -> None:
    name = transfer_job_name(backup_id)
    assert JOB_RULE.match(name) and len(name) <= 128, name
    assert name == transfer_job_name(backup_id)
    assert transfer_job_name(backup_id + "x") != name


def test_descriptions_name_the_backup() -> None:
    assert description_of("b-1") == "lc2-backup b-1"


def test_a_restores_job_follows_sts_rules_and_is_never_a_backups() -> None:
    restore_id = "0b9f3c1e-6d0a-5c55-9e1a-5d3c2b1a0f99"
    name = restore_job_name(restore_id)
    assert JOB_RULE.match(name) and len(name) <= 128, name
    assert name == restore_job_name(restore_id) and name != transfer_job_name(restore_id)
    assert restore_description(restore_id) == f"lc2-restore {restore_id}"


@pytest.mark.parametrize(
    ("instance_id", "project", "instance"),
    [
        ("liferay", "default-proj", "liferay"),
        ("other-proj:liferay", "other-proj", "liferay"),
        ("other-proj:europe-west1:liferay", "other-proj", "liferay"),
        ("projects/other-proj/instances/liferay", "other-proj", "liferay"),
    ],
)
def test_instance_ids_in_every_documented_form(instance_id: str, project: str, instance: str) -> None:
    assert InstanceRef.parse(instance_id, "default-proj") == InstanceRef(project, instance)


@pytest.mark.parametrize(
    ("instance_id", "default", "says"),
    [
        ("liferay", None, "LC2_GCP__PROJECT"),
        ("a:b:c:d", "p", "connection name"),
        ("projects/p/liferay", "p", "projects/<project>/instances/<instance>"),
        ("Liferay_DB", "p", "not a Cloud SQL instance name"),
    ],
)
def test_a_wrong_instance_id_is_refused_naming_the_fix(instance_id: str, default: str | None, says: str) -> None:
    with pytest.raises(PermanentProviderError, match=re.escape(says)):
        InstanceRef.parse(instance_id, default)


def test_engines_from_database_versions() -> None:
    assert engine_of("POSTGRES_15") == ("postgres", "15")
    assert engine_of("MYSQL_8_0_31") == ("mysql", "8.0.31")


def test_a_done_operation_fails_only_with_errors() -> None:
    assert operation_failure({"status": "DONE"}) is None
    failed = {"error": {"errors": [{"code": "ERROR_RDBMS", "message": "disk full"}]}}
    assert operation_failure(failed) == "ERROR_RDBMS: disk full"


def _http_error(status: int, reason: str, message: str = "m") -> HttpError:
    body: dict[str, Any] = {"error": {"code": status, "message": message, "errors": [{"reason": reason}]}}
    return HttpError(Response({"status": str(status)}), json.dumps(body).encode())


def test_cloud_sql_errors_become_transient_or_permanent_naming_the_fix() -> None:
    call = GcpCall("cloudsql.instances.export", "Cloud SQL instance 'p/i'", "check spec.database.instanceId")
    assert is_busy(_http_error(409, "operationInProgress")) and not is_busy(_http_error(404, "instanceDoesNotExist"))
    assert isinstance(call.translate(_http_error(409, "operationInProgress")), TransientProviderError)
    assert isinstance(call.translate(_http_error(503, "backendError")), TransientProviderError)
    missing = call.translate(_http_error(404, "instanceDoesNotExist", "The Cloud SQL instance does not exist."))
    assert isinstance(missing, PermanentProviderError)
    assert "does not exist" in str(missing) and "check spec.database.instanceId" in str(missing)
    denied = call.translate(_http_error(403, "notAuthorized"))
    assert "grant cloudsql.instances.export" in str(denied)


def test_rest_errors_are_read_by_their_status_not_their_class() -> None:
    class Body:
        def __init__(self, status: str) -> None:
            self.status = status

        def json(self) -> dict[str, Any]:
            return {"error": {"code": 409, "status": self.status}}

    assert api_status(core.Conflict("x", response=Body("ALREADY_EXISTS"))) == "ALREADY_EXISTS"
    assert api_status(core.Conflict("x", response=Body("ABORTED"))) == "ABORTED"
    assert api_status(core.FailedPrecondition("x")) == "FAILED_PRECONDITION"
    assert api_status(ValueError("x")) is None
