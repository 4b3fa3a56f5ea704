"""Secrets never reach a log line, an event or the projection: every free-text message passes through here."""

from __future__ import annotations

import re

_PATTERNS = [
    # key=value / key: value pairs (query strings, connection strings, SAS tokens)
    re.compile(
        r"(?i)\b(password|passwd|pwd|secret|secret_?access_?key|access_?key|accountkey|token|sig|signature|"
        r"credential|x-amz-security-token|x-amz-signature|sharedaccesssignature|api[-_]?key)(\s*[=:]\s*)"
        r"(\"[^\"]*\"|'[^']*'|[^&;,\s\"']+)"
    ),
    # user:password@host in URLs and DSNs
    re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]+:)([^@\s/]+)(@)"),
    # AWS secret keys and session tokens that appear bare
    re.compile(r"(?<![A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
    # Authorization headers
    re.compile(r"(?i)(authorization\s*[:=]\s*)(bearer|basic|aws4-hmac-sha256)?\s*[^\s,]+"),
]
MASK = "***"


def redact(text: str) -> str:
    out = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    out = _PATTERNS[1].sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", out)
    out = _PATTERNS[2].sub(MASK, out)
    return _PATTERNS[3].sub(lambda m: f"{m.group(1)}{MASK}", out)
