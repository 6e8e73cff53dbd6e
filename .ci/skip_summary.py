#!/usr/bin/env python3
"""Prints why tests were skipped: the skipped tests of the given TRX files, grouped by reason, most frequent first.

A reason is the first line of the skip message; a group lists up to three of its tests.
Usage: skip_summary.py RESULTS.trx [...]
"""
import collections
import sys
import xml.etree.ElementTree as ET

NS = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}


def skipped(paths):
    for path in paths:
        for result in ET.parse(path).getroot().iterfind(".//t:UnitTestResult", NS):
            if result.get("outcome") != "NotExecuted":
                continue
            message = result.findtext("t:Output/t:ErrorInfo/t:Message", default="", namespaces=NS).strip()
            yield result.get("testName", "?"), (message.splitlines() or ["(no reason given)"])[0].strip()


def main(paths):
    groups = collections.defaultdict(list)
    for test, reason in skipped(paths):
        groups[reason].append(test)
    total = sum(len(tests) for tests in groups.values())
    if total == 0:
        print("No test was skipped.")
        return
    print(f"Skipped: {total} test(s), by reason:")
    for reason, tests in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        names = ", ".join(".".join(t.split(".")[-2:]) for t in sorted(tests)[:3])
        more = f" and {len(tests) - 3} more" if len(tests) > 3 else ""
        print(f"  {len(tests):4d}  {reason}")
        print(f"        {names}{more}")


if __name__ == "__main__":
    main(sys.argv[1:])
