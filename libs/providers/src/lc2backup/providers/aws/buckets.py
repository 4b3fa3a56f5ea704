"""A bucket checked before work starts, so a missing or unreachable bucket fails the branch by name.

Without it a missing destination surfaces late (RDS accepts an export to any bucket name and fails
minutes later with ``InvalidS3BucketFault``; a copy fails object by object), and a user reads a generic
error instead of "bucket X does not exist".
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from lc2backup.providers.errors import PermanentProviderError
from lc2backup.providers.s3 import S3Client, error_code, translate


async def require_bucket(client: S3Client, bucket: str, what: str, field: str, region: str) -> None:
    """``what`` says the bucket's role ("source bucket"), ``field`` where the user names it."""
    try:
        await client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise PermanentProviderError(f"{what} {bucket} does not exist: create it or fix {field}") from exc
        if code in ("403", "AccessDenied"):
            raise PermanentProviderError(
                f"access denied to {what} {bucket}: grant the service's AWS role s3:ListBucket on it"
            ) from exc
        if code in ("301", "PermanentRedirect"):
            actual = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
            raise PermanentProviderError(
                f"{what} {bucket} is in region {actual or 'another region'}, not {region}: set LC2_AWS__REGION"
            ) from exc
        raise translate(exc, f"s3://{bucket}", bucket) from exc
    except Exception as exc:
        raise translate(exc, f"s3://{bucket}", bucket) from exc
