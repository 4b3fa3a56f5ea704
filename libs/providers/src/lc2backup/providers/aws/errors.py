"""RDS errors translated into the providers' tree, each naming the resource and what to fix.

Codes are compared without their ``Fault`` suffix: AWS answers ``DBSnapshotNotFound`` where moto answers
``DBSnapshotNotFoundFault`` (and some real codes keep the suffix), so both spellings meet here.
Throttling, 5xx and a busy instance are transient (retried durably with ``retry_after``); everything the
user has to change (a name, a permission, a quota) is permanent and says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from lc2backup.providers.errors import PermanentProviderError, ProviderError, TransientProviderError

_TRANSIENT = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled", "RequestThrottledException",
    "RequestLimitExceeded", "TooManyRequestsException", "PriorRequestNotComplete", "InternalFailure",
    "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException", "ExpiredToken",
    "ExpiredTokenException",
    # the source is busy (backing-up, modifying, a snapshot still being created): try again later
    "InvalidDBInstanceState", "InvalidDBClusterState", "InvalidDBClusterSnapshotState", "InvalidExportSourceState",
}  # fmt: skip
_DENIED = {
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId",
    "SignatureDoesNotMatch", "UnrecognizedClientException", "AuthFailure", "MissingAuthenticationToken",
    "IncompleteSignature", "NotAuthorized",
}  # fmt: skip
_NOT_FOUND = {
    "DBInstanceNotFound", "DBClusterNotFound", "DBSnapshotNotFound", "DBClusterSnapshotNotFound",
    "ExportTaskNotFound",
}  # fmt: skip


def rds_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")).removesuffix("Fault")


@dataclass(frozen=True)
class RdsCall:
    """One RDS call as the user has to read it: the IAM action, the resource, and how to fix a wrong name."""

    action: str  # IAM action without the "rds:" prefix, e.g. CreateDBSnapshot
    resource: str  # e.g. "RDS instance 'liferay-prd'"
    region: str
    fix: str = ""
    retry_after: float | None = None
    role_arn: str | None = None
    kms_key_id: str | None = None
    bucket: str | None = None

    def translate(self, exc: Exception) -> ProviderError:
        where = f"rds:{self.action} on {self.resource}"
        if isinstance(exc, ClientError):
            return self._client_error(exc, where)
        if isinstance(exc, (ConnectionError, ReadTimeoutError, asyncio.TimeoutError, OSError)):
            return TransientProviderError(f"{where}: RDS unreachable ({type(exc).__name__})", self.retry_after)
        if isinstance(exc, BotoCoreError):
            return TransientProviderError(f"{where}: {type(exc).__name__}", self.retry_after)
        return PermanentProviderError(f"{where}: {exc!r}")

    def _client_error(self, exc: ClientError, where: str) -> ProviderError:
        code = rds_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = str(exc.response.get("Error", {}).get("Message", "")).strip()
        if code in _TRANSIENT or (isinstance(status, int) and status >= 500):
            return TransientProviderError(f"{where}: {code or status} (will retry)", self.retry_after)
        if code in _NOT_FOUND:
            fix = f": {self.fix}" if self.fix else ""
            return PermanentProviderError(f"{self.resource} not found in region {self.region}{fix}")
        if code in _DENIED:
            return PermanentProviderError(
                f"access denied to {self.resource} ({code}): grant rds:{self.action} to the service's AWS role"
            )
        known = self._export_fault(code)
        if known:
            return PermanentProviderError(known)
        if code == "SnapshotQuotaExceeded":
            return PermanentProviderError(
                f"manual snapshot quota reached in region {self.region} while snapshotting {self.resource}: "
                "delete old manual snapshots or raise the RDS quota"
            )
        return PermanentProviderError(f"{where}: {code} {message}".strip())

    def _export_fault(self, code: str) -> str | None:
        role, key, bucket = self.role_arn or "(unset)", self.kms_key_id or "(unset)", self.bucket or "(unset)"
        return {
            "IamRoleNotFound": f"export role {role} not found: set LC2_AWS__EXPORT_IAM_ROLE_ARN to an existing "
            "role that trusts export.rds.amazonaws.com",
            "IamRoleMissingPermissions": f"export role {role} cannot write to bucket {bucket}: grant it "
            "s3:PutObject*, s3:GetObject*, s3:ListBucket, s3:DeleteObject* and s3:GetBucketLocation",
            "KMSKeyNotAccessible": f"KMS key {key} is not usable for the export: check LC2_AWS__EXPORT_KMS_KEY_ID "
            "and grant kms:CreateGrant and kms:DescribeKey to db-export's role",
            "InvalidS3Bucket": f"bucket {bucket} cannot receive the export: it must exist in region "
            f"{self.region} and the export role {role} must be able to write to it",
            "InvalidExportOnly": f"RDS rejected the export selection of {self.resource}: check "
            "spec.database.databaseName",
        }.get(code)
