"""AWS Signature Version 4 for the handful of S3 requests the lean copy path sends itself.

Only what those requests need: header-based signing of a request whose payload is empty, with the
signing key cached per day. Verified against botocore's own signer in ``tests/providers/test_sigv4.py``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ALGORITHM = "AWS4-HMAC-SHA256"


def uri_encode(value: str, *, keep_slash: bool) -> str:
    """RFC 3986 encoding as SigV4 wants it: everything but unreserved characters (and ``/`` in paths)."""
    return quote(value, safe="/~" if keep_slash else "~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{uri_encode(k, keep_slash=False)}={uri_encode(v, keep_slash=False)}" for k, v in sorted(params.items())
    )


@dataclass
class Signer:
    access_key: str
    secret_key: str
    region: str
    service: str = "s3"
    _keys: dict[str, bytes] = field(default_factory=dict, repr=False)

    def _signing_key(self, day: str) -> bytes:
        key = self._keys.get(day)
        if key is None:
            key = f"AWS4{self.secret_key}".encode()
            for part in (day, self.region, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {day: key}
        return key

    def sign(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        *,
        payload_sha256: str = EMPTY_SHA256,
        now: datetime | None = None,
    ) -> dict[str, str]:
        """The request's headers plus ``x-amz-date``, ``x-amz-content-sha256`` and ``Authorization``.

        ``path`` is already URI-encoded (as sent); ``headers`` must include ``host``.
        """
        moment = now or datetime.now(UTC)
        amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        signed = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
        signed["x-amz-date"] = amz_date
        signed["x-amz-content-sha256"] = payload_sha256
        names = sorted(signed)
        canonical = "\n".join(
            (
                method,
                path,
                canonical_query(query),
                "".join(f"{name}:{signed[name]}\n" for name in names),
                ";".join(names),
                payload_sha256,
            )
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        signed["authorization"] = (
            f"{ALGORITHM} Credential={self.access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return signed
