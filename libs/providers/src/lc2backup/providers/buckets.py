"""A bucket checked before work starts, so a missing or unreachable bucket fails the branch by name.

LC2 Backup never creates buckets: the source and the backup (destination) bucket must exist before a backup
is requested, with the retention, versioning, encryption and lifecycle rules their owner chose. Without
this check a missing bucket surfaces late and under another name: RDS accepts an export to any bucket name
and fails minutes later with ``InvalidS3BucketFault``; SeaweedFS answers a write into a missing bucket with
``AccessDenied`` and a CopyObject into one with ``InternalError`` (retried until the deadline), so a user
read "grant the backup role access" for a bucket that does not exist.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.s3 import S3Client, error_code, translate

MISSING = "{what} {bucket} does not exist: create it before requesting a backup (LC2 Backup never creates buckets) or fix {field}"


async def require_bucket(
    client: S3Client, bucket: str, what: str, field: str, *, grant: str, region: str | None = None
) -> None:
    """``what`` says the bucket's role ("destination bucket"), ``field`` where the user names it, ``grant`` who
    needs access when it is denied ("the service's AWS role"); ``region`` is checked where S3 redirects."""
    try:
        await client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise PermanentProviderError(MISSING.format(what=what, bucket=bucket, field=field)) from exc
        if code in ("403", "AccessDenied"):
            raise PermanentProviderError(
                f"access denied to {what} {bucket}: grant {grant} s3:ListBucket on it"
            ) from exc
        if code in ("301", "PermanentRedirect"):
            actual = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
            raise PermanentProviderError(
                f"{what} {bucket} is in region {actual or 'another region'}, not {region}: set LC2_AWS__REGION"
            ) from exc
        raise translate(exc, f"s3://{bucket}", bucket) from exc
    except Exception as exc:
        raise translate(exc, f"s3://{bucket}", bucket) from exc
