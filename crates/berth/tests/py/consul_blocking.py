"""A blocking query wakes on its own key, not on another: a query on key
k, blocked at k's index, returns the new value of k, written after an
unrelated key was written."""
import sys
import threading
import time

import consul

host, port, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = consul.Consul(host=host, port=port)
k, other = f"{prefix}/watched", f"{prefix}/other"
c.kv.put(k, "old")
idx, _ = c.kv.get(k)
result = {}


def block():
    result["answer"] = c.kv.get(k, index=idx, wait="20s")


t = threading.Thread(target=block)
t.start()
time.sleep(0.3)
c.kv.put(other, "unrelated")
c.kv.put(other, "unrelated again")
time.sleep(0.3)
assert t.is_alive(), "an unrelated write woke the query: %r" % (result,)
c.kv.put(k, "new")
t.join(10)
assert not t.is_alive(), "the write of its own key did not wake the query"
new_idx, v = result["answer"]
assert v["Value"] == b"new" and int(new_idx) > int(idx), (new_idx, idx, v)

# A prefix query wakes on a delete under it.
pidx, _ = c.kv.get(prefix + "/", recurse=True)
t = threading.Thread(target=lambda: result.update(p=c.kv.get(prefix + "/", recurse=True, index=pidx, wait="20s")))
t.start()
time.sleep(0.2)
c.kv.delete(other)
t.join(10)
assert not t.is_alive(), "a delete did not wake the prefix query"
assert int(result["p"][0]) > int(pidx), result["p"]
assert [e["Key"] for e in result["p"][1]] == [k]
print("ok")
