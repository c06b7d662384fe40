#!/usr/bin/env python3
"""Validate NDJSON audit records against the OCSF 1.7.0 `http_activity` JSON Schema.

The schema is produced by the PyPI package `ocsf-json-schema` (which ships the OCSF 1.7.0
schema export) for the profiles each record declares in `metadata.profiles`, exactly as OCSF
defines profile-dependent attributes (`action_id`, `disposition_id` need `security_control`,
`trace` needs `trace`). Each record is validated with `jsonschema` (Draft 2020-12).

Usage: validate_ocsf.py [FILE ...]   (reads stdin when no file, or `-`, is given)
Exit status: 0 when every record validates (and at least one was read, unless
--allow-empty); 1 otherwise, printing `<file>:<line>: <json path>: <message>` per error.
"""

import argparse
import json
import sys

OCSF_VERSION = "1.7.0"
CLASS_NAME = "http_activity"


def load_validator_factory():
    try:
        import jsonschema
        from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema, get_packaged_versions
    except ImportError as e:  # the venv is missing a package: that is a failure, not a skip
        sys.stderr.write(f"validate_ocsf: {e} (install jsonschema and ocsf-json-schema)\n")
        sys.exit(2)
    if OCSF_VERSION not in get_packaged_versions():
        sys.stderr.write(
            f"validate_ocsf: ocsf-json-schema does not ship OCSF {OCSF_VERSION} "
            f"(has {sorted(get_packaged_versions())})\n"
        )
        sys.exit(2)
    embedded = OcsfJsonSchemaEmbedded(get_ocsf_schema(OCSF_VERSION))
    cache = {}

    def validator_for(profiles):
        key = tuple(sorted(set(profiles)))
        if key not in cache:
            schema = embedded.get_class_schema(CLASS_NAME, list(key))
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            cache[key] = cls(schema)
        return cache[key]

    return validator_for


def json_path(error):
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def check_record(record, validator_for):
    """Yield (path, message) for every problem with one record."""
    if not isinstance(record, dict):
        yield "$", "record is not a JSON object"
        return
    meta = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    if meta.get("version") != OCSF_VERSION:
        yield "$.metadata.version", f"expected {OCSF_VERSION!r}, got {meta.get('version')!r}"
    profiles = meta.get("profiles", [])
    if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
        yield "$.metadata.profiles", "must be an array of strings"
        return
    try:
        validator = validator_for(profiles)
    except ValueError as e:
        yield "$.metadata.profiles", str(e)
        return
    for error in sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path)):
        yield json_path(error), error.message
    # type_uid is defined as class_uid * 100 + activity_id.
    if isinstance(record.get("activity_id"), int) and isinstance(record.get("type_uid"), int):
        if record["type_uid"] != 4002 * 100 + record["activity_id"]:
            yield "$.type_uid", f"{record['type_uid']} != class_uid * 100 + activity_id"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=["-"])
    parser.add_argument("--allow-empty", action="store_true", help="succeed on no records")
    parser.add_argument("--self-test", action="store_true",
                        help="also prove, on mutated copies of the first record, that the check refuses errors")
    args = parser.parse_args(argv)
    validator_for = load_validator_factory()
    status = 0
    total = 0
    first = None
    for name in args.files:
        stream = sys.stdin if name == "-" else open(name, encoding="utf-8")
        with stream:
            lines = stream.readlines()
        records = [l for l in lines if l.strip()]
        total += len(records)
        if first is None and records:
            first = records[0]
        status |= report(lines, "<stdin>" if name == "-" else name, validator_for)
    if total == 0 and not args.allow_empty:
        print("validate_ocsf: no records read")
        return 1
    if args.self_test:
        if first is None:
            print("validate_ocsf: --self-test needs at least one record")
            return 1
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            return 1
        if not self_test(record, validator_for):
            return 1
    return status


def report(lines, label, validator_for):
    """Validate NDJSON lines, print each problem; return 0 when all are valid."""
    records = 0
    failures = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        records += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"{label}:{lineno}: $: not JSON: {e}")
            failures += 1
            continue
        problems = list(check_record(record, validator_for))
        if problems:
            failures += 1
            uid = record.get("metadata", {}).get("uid") if isinstance(record, dict) else None
            for path, message in problems:
                if len(message) > 300:
                    message = message[:300] + "..."
                print(f"{label}:{lineno}: record {uid or '?'}: {path}: {message}")
    print(f"validate_ocsf: {label}: {records - failures}/{records} records valid "
          f"(OCSF {OCSF_VERSION} {CLASS_NAME})", file=sys.stderr)
    return 1 if failures else 0


def self_test(record, validator_for):
    """Each mutation of a valid record must be refused at the expected path."""
    import copy

    def mutated(fn):
        r = copy.deepcopy(record)
        fn(r)
        return r

    cases = [
        ("$", lambda r: r.__setitem__("bogus_field", 1)),
        ("$.activity_id", lambda r: r.__setitem__("activity_id", 42)),
        ("$", lambda r: r.pop("class_uid")),
        ("$.class_uid", lambda r: r.__setitem__("class_uid", 4001)),
        ("$.severity_id", lambda r: r.__setitem__("severity_id", "1")),
        ("$.metadata.version", lambda r: r["metadata"].__setitem__("version", "1.6.0")),
        # action_id/disposition_id exist only with the security_control profile.
        ("$", lambda r: r["metadata"].__setitem__("profiles", [])),
        ("$.http_request.url.port", lambda r: r["http_request"]["url"].__setitem__("port", 70000)),
        ("$.http_request.http_method", lambda r: r["http_request"].__setitem__("http_method", "BREW")),
        ("$.src_endpoint.ip", lambda r: r.setdefault("src_endpoint", {}).__setitem__("ip", "not-an-ip")),
        ("$.disposition_id", lambda r: r.__setitem__("disposition_id", 13000)),
        ("$.type_uid", lambda r: r.__setitem__("type_uid", 400299 if r["activity_id"] != 99 else 400203)),
    ]
    ok = True
    if list(check_record(record, validator_for)):
        print("validate_ocsf self-test: the unmutated record must be valid")
        ok = False
    for path, fn in cases:
        problems = list(check_record(mutated(fn), validator_for))
        if not any(p == path for p, _ in problems):
            print(f"validate_ocsf self-test: mutation at {path} was not refused: {problems}")
            ok = False
    print(f"validate_ocsf self-test: {len(cases)} mutations refused" if ok else "validate_ocsf self-test FAILED",
          file=sys.stderr)
    return ok


if __name__ == "__main__":
    sys.exit(main())
