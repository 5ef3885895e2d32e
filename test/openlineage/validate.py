#!/usr/bin/python3
"""Validate OpenLineage RunEvents (one JSON document per line on stdin)
against test/openlineage/OpenLineage.json, JSON Schema draft 2020-12, with
format checks (uuid, uri, date-time).  Prints "ok N" or the errors; exits 1
on any error.  Uses Debian's python3-jsonschema and python3-rfc3987."""
import datetime
import json
import os
import re
import sys

import jsonschema

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "OpenLineage.json")

checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


@checker.checks("date-time", raises=ValueError)
def is_datetime(value):
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        raise ValueError("not an RFC 3339 date-time: %r" % value)
    datetime.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return True


def main():
    with open(SCHEMA) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=checker)
    # the formats this check relies on must really be checked
    for fmt in ("uuid", "uri", "date-time"):
        if fmt not in checker.checkers:
            print("format %s is not checked" % fmt)
            return 1
    errors = 0
    count = 0
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        count += 1
        event = json.loads(line)
        for err in validator.iter_errors(event):
            errors += 1
            print("event %d: %s at %s" % (count, err.message, "/".join(map(str, err.path))))
    if errors or count == 0:
        print("%d errors in %d events" % (errors, count))
        return 1
    print("ok %d" % count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
