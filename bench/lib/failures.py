#!/usr/bin/env python3
"""Summarises the failed outcomes of `berth <sel> start|stop --format json`:
how many failed, and the most common errors."""
import collections, json, re, sys

text = open(sys.argv[1]).read()
try:
    outcomes = json.loads(text)
except ValueError:
    print(text.strip().splitlines()[-1] if text.strip() else "no output")
    sys.exit(0)
if isinstance(outcomes, dict):
    outcomes = outcomes.get("outcomes", outcomes.get("results", [outcomes]))
failed = [o for o in outcomes if isinstance(o, dict) and not o.get("ok", True)]
errors = collections.Counter(re.sub(r"c4/s\d+", "c4/sN", o.get("error") or "?") for o in failed)
top = "; ".join(f"{n}x {e[:200]}" for e, n in errors.most_common(3))
print(f"{len(failed)} of {len(outcomes)}: {top}")
