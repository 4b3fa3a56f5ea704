"""The BackupRequest spec: one model validates the kubectl manifest, the NATS command and the API body.

Every pattern here is RE2-compatible (no look-arounds), because the CRD's openAPIV3Schema is generated from
this model and Kubernetes evaluates patterns with Go's regexp: both sides then accept and reject the same
input. The few rules that span fields are checked in ``_cross_field`` and mirrored as CEL rules in the CRD.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

API_GROUP = "backup.liferay.cloud"
API_VERSION = "v1alpha1"
KIND = "BackupRequest"

DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
BUCKET = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$"
_SEG_START = r"[A-Za-z0-9_+=@,~()!-]"
_SEG_CHAR = r"[A-Za-z0-9._+=@,~()!-]"
_SEGMENT = rf"\.*{_SEG_START}{_SEG_CHAR}*"  # at least one non-dot: never "." or ".."
PREFIX = rf"^({_SEGMENT}/)*({_SEGMENT})?$"  # relative, no "//", no "." / ".." segments
INSTANCE_ID = r"^/?[A-Za-z0-9][A-Za-z0-9._:/-]{0,253}$"  # a leading "/": an Azure resource id
DATABASE_NAME = r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$"
STORAGE_ACCOUNT = r"^[a-z0-9]{3,24}$"
TAG_KEY = r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$"

ProjectName = Annotated[str, StringConstraints(pattern=DNS_LABEL, min_length=1, max_length=63)]
BucketName = Annotated[str, StringConstraints(pattern=BUCKET, min_length=3, max_length=63)]
Prefix = Annotated[str, StringConstraints(pattern=PREFIX, max_length=512)]
DatabaseName = Annotated[str, StringConstraints(pattern=DATABASE_NAME, min_length=1, max_length=63)]
TagKey = Annotated[str, StringConstraints(pattern=TAG_KEY, min_length=1, max_length=63)]
TagValue = Annotated[str, StringConstraints(max_length=256)]


def _integral(value: Any) -> Any:
    """JSON has one number type: 30.0 is the integer 30 to JSON Schema (and so to the OpenAPI document)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_integral)]


# snapshot: managed snapshot (fast restore) and an export of it into object storage; dump: logical dump only
Provider = Literal["aws", "gcp", "azure", "local"]
DatabaseBackupType = Literal["snapshot", "dump"]
PROVIDERS: tuple[str, ...] = get_args(Provider)


def _tag_map_schema(schema: dict[str, Any]) -> None:
    """Every key must match (``propertyNames``) and every value is a string: pydantic's ``patternProperties``
    alone would let a key that does not match hold anything, so the schema would promise what is refused."""
    rest = {k: v for k, v in schema.items() if k not in ("patternProperties", "propertyNames", "additionalProperties")}
    schema.clear()
    schema.update(rest)
    schema["propertyNames"] = {"pattern": TAG_KEY, "minLength": 1, "maxLength": 63}
    schema["additionalProperties"] = {"type": "string", "maxLength": 256}


# The first and third CEL rules, as JSON Schema can say them (the OpenAPI document and the spec's schema); the
# overlap rule compares two values, which JSON Schema cannot, so only its description and the 422 /
# BackupRejected tell.
_PROVIDER_RULES: dict[str, Any] = {
    "if": {"properties": {"provider": {"const": "azure"}}, "required": ["provider"]},
    "then": {
        "properties": {
            "documentLibrary": {"required": ["storageAccount"], "properties": {"storageAccount": {"type": "string"}}}
        }
    },
    "else": {
        "properties": {"documentLibrary": {"properties": {"storageAccount": {"type": "null"}}}},
        "if": {"properties": {"provider": {"const": "local"}}, "required": ["provider"]},
        "then": {"properties": {"database": {"properties": {"type": {"const": "dump"}}}}},
    },
}


class SpecModel(BaseModel):
    # Only the camelCase names the schema, the CRD and the OpenAPI document declare: ``project_id`` is unknown.
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        validate_by_name=False,
        validate_by_alias=True,
    )


class DatabaseSpec(SpecModel):
    type: DatabaseBackupType = Field(description="snapshot: managed snapshot + export; dump: logical dump only")
    instance_id: str = Field(
        pattern=INSTANCE_ID,
        min_length=1,
        max_length=255,
        description="Managed instance (RDS / Cloud SQL / flexible server) or, for local, a configured instance name",
    )
    database_name: DatabaseName | None = Field(default=None, description="Database to dump (PostgreSQL)")
    databases_to_ignore: list[DatabaseName] = Field(
        default_factory=list, max_length=64, description="Databases left out of the export (MySQL)"
    )


class DocumentLibrarySpec(SpecModel):
    source_bucket: BucketName = Field(description="Bucket holding Liferay's document library store")
    source_prefix: Prefix = Field(default="", description="Prefix of the store inside the source bucket")
    destination_bucket: BucketName = Field(description="Backup bucket: every artefact of the backup goes here")
    destination_prefix: Prefix = Field(default="", description="Prefix for backups; each backup adds <backupId>/")
    exclude_generated_files: bool = Field(
        default=True,
        description="Skip <companyId>/0/document_thumbnail/, document_preview/ and adaptive/ (regenerated by Liferay)",
    )
    storage_account: str | None = Field(
        default=None,
        pattern=STORAGE_ACCOUNT,
        description="Azure only, and required there: the storage account holding both containers (the buckets)",
    )


class BackupRequestSpec(SpecModel):
    """What to back up: one Liferay environment's database and document library."""

    model_config = SpecModel.model_config | {"json_schema_extra": _PROVIDER_RULES}

    project_id: ProjectName = Field(description="Liferay project, e.g. retail")
    environment: ProjectName = Field(description="Environment of the project, e.g. prd")
    provider: Provider = Field(description="Where the environment runs: aws, gcp, azure or local")
    database: DatabaseSpec
    document_library: DocumentLibrarySpec
    retention_days: JsonInt = Field(default=30, ge=1, le=3650, description="Days the backup is kept")
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=32, description="Copied into metadata.json", json_schema_extra=_tag_map_schema
    )

    def normalised(self) -> BackupRequestSpec:
        """Prefixes end with '/' (a user may write 'retail/prd'); nothing else changes."""
        dl = self.document_library
        return self.model_copy(
            update={
                "document_library": dl.model_copy(
                    update={
                        "source_prefix": _dir(dl.source_prefix),
                        "destination_prefix": _dir(dl.destination_prefix),
                    }
                )
            }
        )


def _dir(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


# The CEL twins of these rules live in the CRD (contracts/crds); keep the messages in step. The overlap rule
# compares prefixes the way ``normalised`` stores them (with a trailing '/'), exactly like the Python check.
def _cel_dir(field: str) -> str:
    ref = f"self.documentLibrary.{field}"
    return f"(has({ref}) ? ({ref} == '' || {ref}.endsWith('/') ? {ref} : {ref} + '/') : '')"


CEL_RULES = [
    (
        "self.provider != 'local' || self.database.type == 'dump'",
        "the local provider cannot take a managed snapshot: use database.type: dump",
    ),
    (
        "self.documentLibrary.sourceBucket != self.documentLibrary.destinationBucket"
        f" || (!{_cel_dir('destinationPrefix')}.startsWith({_cel_dir('sourcePrefix')})"
        f" && !{_cel_dir('sourcePrefix')}.startsWith({_cel_dir('destinationPrefix')}))",
        "documentLibrary destination overlaps its source: use another bucket or a prefix outside the source",
    ),
    (
        "(self.provider == 'azure') == has(self.documentLibrary.storageAccount)",
        "documentLibrary.storageAccount names the Azure storage account of both containers: required for provider"
        " azure, not allowed for the others",
    ),
]


def cross_field_problems(spec: BackupRequestSpec) -> list[Problem]:
    problems = []
    if spec.provider == "local" and spec.database.type != "dump":
        problems.append(Problem(field="spec.database.type", message=CEL_RULES[0][1], type="provider_capability"))
    dl = spec.document_library
    src, dst = _dir(dl.source_prefix), _dir(dl.destination_prefix)
    if dl.source_bucket == dl.destination_bucket and (dst.startswith(src) or src.startswith(dst)):
        problems.append(
            Problem(field="spec.documentLibrary.destinationPrefix", message=CEL_RULES[1][1], type="overlap")
        )
    if (spec.provider == "azure") != (dl.storage_account is not None):
        problems.append(
            Problem(field="spec.documentLibrary.storageAccount", message=CEL_RULES[2][1], type="provider_capability")
        )
    return problems


class Problem(BaseModel):
    """One reason a request was refused, with the path of the field (``spec.database.instanceId``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    field: str
    message: str
    type: str = "invalid"


class SpecInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def _path(root: str, loc: tuple[int | str, ...]) -> str:
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


_PATTERN_MESSAGES = {
    DNS_LABEL: "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
    BUCKET: "must be a bucket name: lowercase letters, digits, '-' and single '.', starting and ending with a"
    " letter or digit",
    PREFIX: "must be a relative key prefix: no leading '/', no '//', no segment of dots only ('.', '..'), only letters,"
    " digits and . _ - + = @ , ~ ( ) !",
    INSTANCE_ID: "must be an instance identifier: letters, digits and . _ : / -, starting with a letter, digit or '/'",
    DATABASE_NAME: "must be a database name: a letter or '_' then letters, digits, '_', '$' or '-'",
    TAG_KEY: "must be a tag key: letters, digits and . _ / -, starting and ending with a letter or digit",
}


def _message(err: Any) -> str:
    if err["type"] == "string_pattern_mismatch":
        pattern = (err.get("ctx") or {}).get("pattern")
        if pattern in _PATTERN_MESSAGES:
            return _PATTERN_MESSAGES[pattern]
    return str(err["msg"]).removeprefix("Value error, ")


def problems_from(exc: ValidationError, root: str = "spec") -> list[Problem]:
    return [
        Problem(field=_path(root, tuple(err["loc"])), message=_message(err), type=str(err["type"]))
        for err in exc.errors(include_url=False)
    ]


def parse_spec(raw: Any) -> BackupRequestSpec:
    """Validate a spec (a dict from JSON or YAML); raises SpecInvalid listing every problem."""
    if not isinstance(raw, dict):
        raise SpecInvalid([Problem(field="spec", message="must be an object", type="dict_type")])
    try:
        spec = BackupRequestSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecInvalid(problems_from(exc)) from exc
    return complete_spec(spec)


def complete_spec(spec: BackupRequestSpec) -> BackupRequestSpec:
    """The rules a model's fields cannot state, for a spec already validated as a model: prefixes normalised,
    cross-field rules checked (raises SpecInvalid). ``parse_spec`` ends here; an entry point whose framework
    validated the model itself (the API's request body) calls this instead of validating it a second time."""
    spec = spec.normalised()
    problems = cross_field_problems(spec)
    if problems:
        raise SpecInvalid(problems)
    return spec
