"""Our SigV4 signer against botocore's (the reference implementation), on the requests the lean path sends."""

from __future__ import annotations

from datetime import datetime

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lc2backup.providers.sigv4 import EMPTY_SHA256, Signer, canonical_query, uri_encode

HOST = "127.0.0.1:8333"


def _botocore(method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> dict[str, str]:
    url = f"http://{HOST}{path}" + (f"?{canonical_query(query)}" if query else "")
    request = AWSRequest(method=method, url=url, headers={**headers, "x-amz-content-sha256": EMPTY_SHA256})
    S3SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "s3", "eu-west-1").add_auth(
        request
    )
    return {k.lower(): v for k, v in request.headers.items()}


@pytest.mark.parametrize(
    ("method", "bucket", "key", "query", "headers"),
    [
        ("GET", "docs", "", {"list-type": "2", "prefix": "20101/0/", "encoding-type": "url", "max-keys": "1000"}, {}),
        ("GET", "docs", "", {"list-type": "2", "prefix": "", "continuation-token": "a+b/c==", "max-keys": "1000"}, {}),
        (
            "PUT",
            "backups",
            "retail/dev/0b6a/documentlibrary/20101/30001/60000/1.0 ünïcødé + %20 ~(x)",
            {},
            {
                "x-amz-copy-source": "/docs/" + uri_encode("20101/30001/60000/1.0 ünïcødé + %20 ~(x)", keep_slash=True),
                "x-amz-copy-source-if-match": '"9b2cf535f27731c974343645a3985328"',
            },
        ),
    ],
)
def test_signature_matches_botocore(
    method: str, bucket: str, key: str, query: dict[str, str], headers: dict[str, str]
) -> None:
    path = f"/{bucket}" + (f"/{uri_encode(key, keep_slash=True)}" if key else "")
    reference = _botocore(method, path, query, headers)
    moment = datetime.strptime(reference["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=None)
    signer = Signer("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1")
    ours = signer.sign(method, path, query, {"host": HOST, **headers}, now=moment)
    assert ours["authorization"] == reference["authorization"]
    assert ours["x-amz-date"] == reference["x-amz-date"]
