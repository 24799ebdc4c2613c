"""Parses a Prometheus text page from stdin with prometheus_client's own
parser (the reference Python client) and prints its samples as JSON:
[{"family", "type", "name", "labels", "value"}]. A page the parser
refuses makes it exit non-zero.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
