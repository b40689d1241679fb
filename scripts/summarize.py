#!/usr/bin/env python3
"""Adds up unit (meson TAP), fuzz (TAP from scripts/fuzz.sh, optional third
argument; one line per harness) and integration (pytest junit) results into
the closing line "N passed, N failed" and exits non-zero when anything failed.

usage: summarize.py TESTLOG_JSON JUNIT_XML [FUZZ_TAP]"""
import json
import re
import sys
import xml.etree.ElementTree as ET


def unit_counts(path):
    passed = failed = 0
    try:
        with open(path) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except OSError:
        print(f"summarize: no unit results at {path}")
        return 0, 1
    for test in lines:
        out = test.get("stdout") or ""
        ok = len(re.findall(r"^ok \d+", out, re.M))
        bad = len(re.findall(r"^not ok \d+", out, re.M))
        if ok + bad == 0:  # a binary that printed no TAP counts as one case
            ok, bad = (1, 0) if test.get("result") == "OK" else (0, 1)
        elif test.get("result") not in ("OK", "EXPECTEDFAIL") and bad == 0:
            bad = 1  # crashed after its last report
        passed += ok
        failed += bad
    return passed, failed


def fuzz_counts(path):
    """One TAP line per harness; a missing file or a harness without a line
    fails (the run was cut short)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        print(f"summarize: no fuzz results at {path}")
        return 0, 1
    plan = re.search(r"^1\.\.(\d+)", text, re.M)
    ok = len(re.findall(r"^ok \d+", text, re.M))
    bad = len(re.findall(r"^not ok \d+", text, re.M))
    if plan:
        bad += max(0, int(plan.group(1)) - ok - bad)
    return ok, bad


def integration_counts(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        print(f"summarize: no integration results at {path}")
        return 0, 1, 0
    passed = failed = skipped = 0
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def main():
    up, uf = unit_counts(sys.argv[1])
    ip, if_, isk = integration_counts(sys.argv[2])
    fp, ff = fuzz_counts(sys.argv[3]) if len(sys.argv) > 3 else (0, 0)
    fuzz = f"; fuzz: {fp} passed, {ff} failed" if len(sys.argv) > 3 else ""
    print(f"unit: {up} passed, {uf} failed{fuzz}; "
          f"integration: {ip} passed, {if_} failed, {isk} skipped")
    up += fp
    uf += ff
    line = f"{up + ip} passed, {uf + if_} failed"
    if isk:
        line += f", {isk} skipped"
    print(line)
    return 1 if uf + if_ else 0


if __name__ == "__main__":
    sys.exit(main())
