"""What kube-apiserver does with a custom resource's body before it stores it, from the CRD's own schema.

A real API server, on every create, update and patch of a custom resource (apiextensions-apiserver's
``customResourceStrategy``):

1. prunes fields the structural ``openAPIV3Schema`` does not declare (unless
   ``x-kubernetes-preserve-unknown-fields``), and nulls where the field is not ``nullable``; with
   ``?fieldValidation=Strict`` (what ``kubectl --validate=strict`` sends) an unknown field is a 400 instead;
2. applies the schema's ``default``\\ s;
3. validates the result against the schema (types, required, enums, patterns, lengths, bounds), and then,
   unless a type or enum error makes it pointless, evaluates every ``x-kubernetes-validations`` CEL rule
   with ``self`` (and ``oldSelf`` on an update; a rule that names ``oldSelf`` is a transition rule and is
   not evaluated on create);
4. on an update, ignores errors in values the update did not change (validation ratcheting, on by default
   since Kubernetes 1.30);
5. refuses with ``422 Invalid``: a ``Status`` whose ``details.causes`` carry each field path and message,
   the CEL rule's own ``message`` for a rule. ``kubectl`` prints those causes.

The schema is checked by ``jsonschema`` (OpenAPI 3.0's schema object is JSON Schema draft 4 plus
``nullable``) and the rules by ``celpy`` (cel-python, with RE2 for ``matches`` as the API server uses).
Messages follow kube-openapi's and k8s.io/apimachinery's ``field.Error`` wording.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import celpy
import jsonschema
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

Obj = dict[str, Any]
Path = tuple[str | int, ...]
_MISSING = object()
# Errors after which the API server does not evaluate CEL rules (apiextensions-apiserver hasBlockingErr).
_BLOCKING = {"FieldValueTypeInvalid", "FieldValueNotSupported"}
_NOT_CHECKED = (
    "some validation rules were not checked because the object was invalid; correct the existing errors to"
    " complete validation"
)


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error``: ``type`` is the cause reason (``FieldValueInvalid``...), ``node`` the value it is about."""

    type: str
    path: Path
    body: str
    node: Path = ()

    @property
    def field(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out

    def cause(self) -> Obj:
        return {"reason": self.type, "message": self.body, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.body}" if self.field else self.body


def _value(value: Any) -> str:
    """How ``field.Invalid`` prints a value: strings quoted, scalars as they are, objects by their type."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    return '"object"' if isinstance(value, dict) else '"array"'


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "object" if isinstance(value, dict) else "array"


def _get(doc: Any, path: Path) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(doc, list) or part >= len(doc):
                return _MISSING
        elif not isinstance(doc, dict) or part not in doc:
            return _MISSING
        doc = doc[part]
    return doc


def _json_schema(node: Any) -> Any:
    """The structural schema as JSON Schema draft 4: ``nullable`` becomes a ``null`` type, extensions go."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    for key in ("enum", "default", "required"):
        if key in node:
            out[key] = node[key]
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@dataclass
class Rule:
    rule: str
    message: str
    reason: str
    program: Any
    transition: bool


@dataclass
class CrdSchema:
    """The ``openAPIV3Schema`` of one served version of a CRD, ready to prune, default and validate."""

    schema: Obj
    _validator: jsonschema.Draft4Validator = field(init=False)
    _rules: dict[int, list[Rule]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._validator = jsonschema.Draft4Validator(_json_schema(self.schema))
        env = celpy.Environment()
        for node in self._nodes(self.schema):
            compiled = []
            for v in node.get("x-kubernetes-validations", []):
                program = env.program(env.compile(v["rule"]))
                message = v.get("message") or f"failed rule: {v['rule']}"
                reason = v.get("reason", "FieldValueInvalid")
                compiled.append(Rule(v["rule"], message, reason, program, "oldSelf" in v["rule"]))
            if compiled:
                self._rules[id(node)] = compiled

    def _nodes(self, node: Obj) -> Iterator[Obj]:
        yield node
        for child in (node.get("properties") or {}).values():
            yield from self._nodes(child)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from self._nodes(node[key])

    # -- pruning and defaulting ------------------------------------------------------------------------------

    def prune(self, obj: Obj) -> list[str]:
        """Drop undeclared fields and non-nullable nulls in place; returns the unknown fields' paths."""
        unknown: list[str] = []
        self._prune(obj, self.schema, "", unknown, root=True)
        return unknown

    def _prune(self, value: Any, schema: Obj, path: str, unknown: list[str], root: bool = False) -> None:
        if isinstance(value, dict):
            if schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties"):
                return
            props = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            for key in list(value):
                if root and key in ("apiVersion", "kind", "metadata"):
                    continue  # ObjectMeta and the type fields are the API server's own, not the schema's
                child = props.get(key, extra if isinstance(extra, dict) else None)
                sub = f"{path}.{key}" if path else key
                if child is None:
                    if not (schema.get("x-kubernetes-preserve-unknown-fields") or extra is True):
                        del value[key]
                        unknown.append(sub)
                    continue
                if value[key] is None and not child.get("nullable"):
                    del value[key]  # a null where the schema does not allow one is pruned, then defaulted
                    continue
                self._prune(value[key], child, sub, unknown)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                self._prune(item, schema["items"], f"{path}[{index}]", unknown)

    def default(self, obj: Obj) -> None:
        """Fill absent fields that have a ``default``, inside objects that are present (in place)."""
        self._default(obj, self.schema)

    def _default(self, value: Any, schema: Obj) -> None:
        if isinstance(value, dict):
            props = schema.get("properties") or {}
            for key, child in props.items():
                if key not in value and "default" in child:
                    value[key] = copy.deepcopy(child["default"])
                if key in value:
                    self._default(value[key], child)
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                for key in value:
                    if key not in props:
                        self._default(value[key], extra)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for item in value:
                self._default(item, schema["items"])

    # -- validation ------------------------------------------------------------------------------------------

    def validate(self, new: Obj, old: Obj | None = None) -> list[FieldError]:
        """Every error of ``new`` (an update when ``old`` is given), as kube-apiserver reports them."""

        def changed(e: FieldError) -> bool:
            # ratcheting: what an update left as it was cannot make the update invalid
            return old is None or not e.node or _get(new, e.node) != _get(old, e.node)

        body = {k: v for k, v in new.items() if k != "metadata"}
        errors = [e for e in map(self._schema_error, self._validator.iter_errors(body)) if changed(e)]
        errors.sort(key=lambda e: e.field)
        if any(e.type in _BLOCKING for e in errors):
            return [*errors, FieldError("FieldValueInvalid", (), _NOT_CHECKED)]
        return errors + [e for e in self._cel(new, old, self.schema, ()) if changed(e)]

    def _schema_error(self, e: jsonschema.ValidationError) -> FieldError:
        path: Path = tuple(e.absolute_path)
        where = ".".join(str(p) for p in path)
        value: Any = e.instance
        limit: Any = e.validator_value
        match e.validator:
            case "required":
                missing = str(e.message).split("'")[1]
                return FieldError("FieldValueRequired", (*path, missing), "Required value", node=path)
            case "enum":
                options = ", ".join(json.dumps(o) for o in limit if o is not None)
                return FieldError(
                    "FieldValueNotSupported",
                    path,
                    f"Unsupported value: {_value(value)}: supported values: {options}",
                    path,
                )
            case "type":
                wanted = e.validator_value[0] if isinstance(e.validator_value, list) else e.validator_value
                got = _type_name(value)
                body = f'Invalid value: "{got}": {where} in body must be of type {wanted}: "{got}"'
                return FieldError("FieldValueTypeInvalid", path, body, path)
            case "pattern":
                body = f"Invalid value: {_value(value)}: {where} in body should match '{e.validator_value}'"
                return FieldError("FieldValueInvalid", path, body, path)
            case "maxLength":
                return FieldError(
                    "FieldValueTooLong", path, f"Too long: may not be more than {e.validator_value} bytes", path
                )
            case "minLength":
                body = (
                    f"Invalid value: {_value(value)}: {where} in body should be at least {e.validator_value} chars long"
                )
                return FieldError("FieldValueInvalid", path, body, path)
            case "minimum":
                body = f"Invalid value: {_value(value)}: {where} in body should be greater than or equal to {e.validator_value}"
                return FieldError("FieldValueInvalid", path, body, path)
            case "maximum":
                body = f"Invalid value: {_value(value)}: {where} in body should be less than or equal to {e.validator_value}"
                return FieldError("FieldValueInvalid", path, body, path)
            case "maxItems" | "maxProperties":
                body = f"Too many: {len(value)}: must have at most {e.validator_value} items"
                return FieldError("FieldValueTooMany", path, body, path)
            case _:
                return FieldError("FieldValueInvalid", path, f"Invalid value: {_value(value)}: {e.message}", path)

    def _cel(self, new: Any, old: Any, schema: Obj, path: Path) -> list[FieldError]:
        errors: list[FieldError] = []
        for rule in self._rules.get(id(schema), []):
            if rule.transition and (old is _MISSING or old is None):
                continue  # a transition rule needs an old value at this place
            activation = {"self": json_to_cel(new)}
            if rule.transition:
                activation["oldSelf"] = json_to_cel(old)
            try:
                ok = bool(rule.program.evaluate(activation))
                body = f"Invalid value: {_value(new)}: {rule.message}"
            except CELEvalError as exc:
                ok, body = False, f"Invalid value: {_value(new)}: rule evaluation error: {exc.args[0]}"
            if not ok:
                errors.append(FieldError(rule.reason, path, body, path if not rule.transition else ()))
        if isinstance(new, dict):
            props = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            for key, value in new.items():
                if key == "metadata" and not path:
                    continue
                child = props.get(key, extra if isinstance(extra, dict) else None)
                if child is not None and value is not None:
                    before = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
                    errors += self._cel(value, before, child, (*path, key))
        elif isinstance(new, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(new):
                errors += self._cel(item, _MISSING, schema["items"], (*path, index))
        return errors


_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"


def name_errors(name: str) -> list[FieldError]:
    """``metadata.name`` of a custom resource: an RFC 1123 subdomain (apimachinery's ``IsDNS1123Subdomain``)."""
    errors = []
    if len(name) > 253:
        errors.append(
            FieldError(
                "FieldValueInvalid",
                ("metadata", "name"),
                f"Invalid value: {_value(name)}: must be no more than 253 characters",
            )
        )
    if not re.fullmatch(_SUBDOMAIN, name):
        message = (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and"
            " must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation"
            f" is '{_SUBDOMAIN}')"
        )
        errors.append(
            FieldError("FieldValueInvalid", ("metadata", "name"), f"Invalid value: {_value(name)}: {message}")
        )
    return errors


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> Obj:
    """The ``422 Invalid`` Status ``errors.NewInvalid`` builds (``kubectl`` prints its causes)."""
    aggregate = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'{kind}.{group} "{name}" is invalid: {aggregate}',
        "reason": "Invalid",
        "details": {"name": name, "group": group, "kind": kind, "causes": [e.cause() for e in errors]},
        "code": 422,
    }
