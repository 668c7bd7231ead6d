"""JUnit XML for CI: one testcase per guarantee or rule test, failures with expected vs actual.

The common JUnit schema every CI reads (Jenkins, GitLab, GitHub test reporters): `testsuites` >
`testsuite` (name, tests, failures, errors, skipped, time) > `testcase` (name, classname, time)
with an optional `failure` (message, type, text). Written atomically; never holds query text.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from reports.render import write_atomic


@dataclass(frozen=True)
class JUnitCase:
    name: str
    classname: str
    time_s: float = 0.0
    failure: str | None = None
    """None when the case passed; otherwise a one-line message (expected vs actual)."""
    details: str = ""
    error: bool = False
    """True for a case that could not run (an error, not a failed assertion)."""


def junit_xml(suites: dict[str, list[JUnitCase]]) -> str:
    root = ET.Element("testsuites")
    total = failures = errors = 0
    total_time = 0.0
    for suite_name, cases in suites.items():
        s_fail = sum(1 for c in cases if c.failure is not None and not c.error)
        s_err = sum(1 for c in cases if c.failure is not None and c.error)
        s_time = sum(c.time_s for c in cases)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=suite_name,
            tests=str(len(cases)),
            failures=str(s_fail),
            errors=str(s_err),
            skipped="0",
            time=f"{s_time:.3f}",
        )
        for c in cases:
            case = ET.SubElement(
                suite, "testcase", name=c.name, classname=c.classname, time=f"{c.time_s:.3f}"
            )
            if c.failure is not None:
                tag = "error" if c.error else "failure"
                el = ET.SubElement(case, tag, message=c.failure, type=tag)
                el.text = c.details or c.failure
        total += len(cases)
        failures += s_fail
        errors += s_err
        total_time += s_time
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str | Path, suites: dict[str, list[JUnitCase]]) -> Path:
    return write_atomic(Path(path), junit_xml(suites))


def drill_cases(journal: dict) -> list[JUnitCase]:
    """One testcase per guarantee of a drill journal; a drill that did not complete adds an
    error case (its guarantees could not all be judged)."""
    name = journal["name"]
    cases = [
        JUnitCase(
            name=g["id"],
            classname=f"drills.{name}",
            failure=None
            if g["verdict"] == "passed"
            else f"{g['verdict']}: expected {g['expected_text']}, got {g['actual_text']}",
        )
        for g in journal["guarantees"]
    ]
    if journal["status"] != "completed":
        why = journal.get("error") or f"the drill ended {journal['status']}"
        cases.append(
            JUnitCase(
                name="drill completed",
                classname=f"drills.{name}",
                time_s=float(journal.get("wall_seconds") or 0.0),
                failure=str(why),
                error=True,
            )
        )
    elif cases:
        cases[0] = JUnitCase(
            cases[0].name,
            cases[0].classname,
            float(journal.get("wall_seconds") or 0.0),
            cases[0].failure,
        )
    return cases
