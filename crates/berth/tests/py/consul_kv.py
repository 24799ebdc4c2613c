"""KV through py-consul: put, get, cas, recurse, keys with a separator,
deletes, and transactions (applied and rolled back)."""
import base64
import sys

import consul

host, port, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = consul.Consul(host=host, port=port)
k = lambda s: f"{prefix}/{s}"

assert c.kv.put(k("a"), "1") is True
idx, v = c.kv.get(k("a"))
assert v["Value"] == b"1" and v["CreateIndex"] == v["ModifyIndex"], v
assert int(idx) == v["ModifyIndex"], (idx, v)

# cas: a stale index loses, the current one wins; cas=0 creates only.
assert c.kv.put(k("a"), "2", cas=v["ModifyIndex"]) is True
assert c.kv.put(k("a"), "3", cas=v["ModifyIndex"]) is False
assert c.kv.get(k("a"))[1]["Value"] == b"2"
assert c.kv.put(k("a"), "4", cas=0) is False
assert c.kv.put(k("new"), "n", cas=0) is True

# An empty value reads back as None, flags are kept.
assert c.kv.put(k("empty"), None, flags=42) is True
e = c.kv.get(k("empty"))[1]
assert e["Value"] is None and e["Flags"] == 42, e

c.kv.put(k("dir/x"), "x")
c.kv.put(k("dir/y/z"), "z")
_, keys = c.kv.get(prefix + "/", keys=True, separator="/")
assert keys == [k("a"), k("dir/"), k("empty"), k("new")], keys
_, under = c.kv.get(k("dir/"), recurse=True)
assert [e["Key"] for e in under] == [k("dir/x"), k("dir/y/z")], under

# A missing key is None; the index still comes back.
idx, none = c.kv.get(k("missing"))
assert none is None and int(idx) >= 1

# Deletes: one key, cas, a tree.
assert c.kv.delete(k("new")) is True
assert c.kv.get(k("new"))[1] is None
a = c.kv.get(k("a"))[1]
assert c.kv.delete(k("a"), cas=a["ModifyIndex"] - 1) is False
assert c.kv.delete(k("a"), cas=a["ModifyIndex"]) is True
assert c.kv.delete(k("dir/"), recurse=True) is True
assert c.kv.get(k("dir/"), recurse=True)[1] is None

# A transaction applies everything...
b64 = lambda s: base64.b64encode(s.encode()).decode()
r = c.txn.put([
    {"KV": {"Verb": "set", "Key": k("t1"), "Value": b64("one")}},
    {"KV": {"Verb": "cas", "Key": k("t2"), "Value": b64("two"), "Index": 0}},
    {"KV": {"Verb": "get", "Key": k("t1")}},
])
assert r["Errors"] is None, r
assert base64.b64decode(r["Results"][2]["KV"]["Value"]) == b"one", r

# ...or nothing: a failed check rolls every operation back (409).
try:
    c.txn.put([
        {"KV": {"Verb": "set", "Key": k("t1"), "Value": b64("changed")}},
        {"KV": {"Verb": "check-not-exists", "Key": k("t2")}},
    ])
    raise AssertionError("the transaction should have been rolled back")
except consul.base.ConsulException as ex:
    assert "409" in str(ex) or "OpIndex" in str(ex), ex
assert c.kv.get(k("t1"))[1]["Value"] == b"one"
# A leader is known and is a peer.
leader = c.status.leader()
assert leader and leader in c.status.peers(), (leader, c.status.peers())
assert c.agent.self()["Config"]["NodeName"]
print("ok")
