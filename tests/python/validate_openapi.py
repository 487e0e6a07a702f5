"""Checks the API's answers against its OpenAPI 3.1 document, with the reference JSON Schema
implementation (Draft 2020-12, the dialect of OpenAPI 3.1 schemas), and the document itself
against the OpenAPI 3.1 meta-schema. Prints one JSON object; exits 0 whatever it found, so
the caller asserts on the outcome.

usage: validate_openapi.py DOCUMENT.json CASES.json

CASES.json is a list of {"path", "method", "status", "content_type", "body"}: `path` as the
document spells it (`/api/v1/tenants/{id}`), `body` the JSON the route answered. Each body
is validated against the schema the document gives for that path, method, status and
media type, `$ref`s resolved against the document's components. The check is stricter
than the document in one way: an object may carry only the properties its schema
declares, so that a field the code sends but the document omits is a mismatch too (the
document itself leaves objects open, so that adding a field is not a breaking change).

Prints {"document_errors": [...], "mismatches": [...], "checked": N}.
"""
import copy
import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:consentry:openapi"
SCHEMA_PREFIX = "#/components/schemas/"
RESPONSE_PREFIX = "#/components/responses/"
# Keywords whose values are data, not schemas.
DATA_KEYWORDS = {"example", "examples", "enum", "const", "default", "required", "description"}
# Keywords whose values map names to schemas.
SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "dependentSchemas"}


def closed(node, schemas, close=True):
    """`node` with `unevaluatedProperties: false` on each object schema that declares
    properties. The members of an `allOf` stay open (a `$ref` among them is inlined, open),
    so that the object they make up together is closed once, over all their properties."""
    if isinstance(node, list):
        return [closed(item, schemas) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in DATA_KEYWORDS:
            out[key] = value
        elif key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: closed(sub, schemas) for name, sub in value.items()}
        elif key == "allOf":
            out[key] = [
                closed(open_member(member, schemas), schemas, close=False) for member in value
            ]
        else:
            out[key] = closed(value, schemas)
    declares = "properties" in out or "allOf" in out
    if close and declares and "additionalProperties" not in out and "unevaluatedProperties" not in out:
        out["unevaluatedProperties"] = False
    return out


def open_member(member, schemas):
    ref = member.get("$ref", "") if isinstance(member, dict) else ""
    if ref.startswith(SCHEMA_PREFIX) and len(member) == 1:
        return copy.deepcopy(schemas[ref[len(SCHEMA_PREFIX):]])
    return member


def pointer(*parts):
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def main():
    document_path, cases_path = sys.argv[1:3]
    with open(document_path, encoding="utf-8") as f:
        document = json.load(f)
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)

    document_errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in OpenAPIV31SpecValidator(document).iter_errors()
    ]

    schemas = document.get("components", {}).get("schemas", {})
    strict = copy.deepcopy(document)
    strict.setdefault("components", {})["schemas"] = {
        name: closed(schema, schemas) for name, schema in schemas.items()
    }
    registry = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(strict, default_specification=DRAFT202012)
    )

    mismatches = []
    checked = 0
    for case in cases:
        where = f"{case['method'].upper()} {case['path']} {case['status']}"
        operation = strict.get("paths", {}).get(case["path"], {}).get(case["method"])
        if operation is None:
            mismatches.append(f"{where}: the document has no such operation")
            continue
        status = str(case["status"])
        responses = operation.get("responses", {})
        key = status if status in responses else status[0] + "XX"
        key = key if key in responses else "default"
        response = responses.get(key)
        if response is None:
            mismatches.append(f"{where}: the document lists no response with this status")
            continue
        location = ("paths", case["path"], case["method"], "responses", key)
        ref = response.get("$ref", "")
        if ref.startswith(RESPONSE_PREFIX):
            name = ref[len(RESPONSE_PREFIX):]
            response = strict.get("components", {}).get("responses", {}).get(name)
            location = ("components", "responses", name)
            if response is None:
                mismatches.append(f"{where}: {ref} is not in the document")
                continue
        media = case["content_type"].split(";")[0].strip()
        content = response.get("content", {})
        if not content and case["body"] is None:
            # Documented without a body (204), answered without one.
            checked += 1
            continue
        if media not in content:
            mismatches.append(
                f"{where}: answered {media}, documented {sorted(content) or 'no body'}"
            )
            continue
        schema_at = pointer(*location, "content", media, "schema")
        validator = Draft202012Validator(
            {"$ref": DOCUMENT_URI + "#" + schema_at}, registry=registry
        )
        for error in validator.iter_errors(case["body"]):
            at = "/".join(map(str, error.absolute_path)) or "(body)"
            mismatches.append(f"{where}: at {at}: {error.message}")
        checked += 1

    print(json.dumps({"document_errors": document_errors, "mismatches": mismatches, "checked": checked}))


if __name__ == "__main__":
    main()
