"""Berth tokens on the Consul API through py-consul (its token= sends
X-Consul-Token): KV grants decide reads and writes; a bad token is
Consul's 403; without a token, loopback keeps Consul's no-ACL behaviour.
A token sees only the catalog entries of the namespaces it may read."""
import sys

import consul

host, port, token, reader_token, ns = (
    sys.argv[1],
    int(sys.argv[2]),
    sys.argv[3],
    sys.argv[4],
    sys.argv[5],
)


def denied(f):
    try:
        f()
    except consul.ACLPermissionDenied as e:
        return str(e)
    raise AssertionError("not denied")


c = consul.Consul(host=host, port=port, token=token)
assert c.kv.put("service/pg/leader", "n1") is True
assert c.kv.get("service/pg/leader")[1]["Value"] == b"n1"
denied(lambda: c.kv.put("service/other", "x"))
denied(lambda: c.kv.get("secret/x"))
denied(lambda: c.kv.delete("service/other"))
# A read grant reads (a missing key is a 404, not a refusal), writes not.
assert c.kv.get("config/a")[1] is None
denied(lambda: c.kv.put("config/a", "x"))
# (py-consul's txn.put sends no token at all: the test's curl checks
# transactions.)

bad = consul.Consul(host=host, port=port, token="berth1.bm90.c2ln")
assert "ACL not found" in denied(lambda: bad.kv.get("service/pg/leader"))

anon = consul.Consul(host=host, port=port)
assert anon.kv.put("anything", "1") is True

# The catalog, filtered by namespace: entries of berth objects carry their
# path in the berth-path meta; one bound to no object is root's to see.
anon.agent.service.register("svc-a", service_id="svc-a1", meta={"berth-path": ns + "-a/web"})
anon.agent.service.register("svc-b", service_id="svc-b1", meta={"berth-path": ns + "-b/web"})
anon.agent.service.register("loose", service_id="loose1")
assert {"svc-a", "svc-b", "loose"} <= set(anon.catalog.services()[1])
reader = consul.Consul(host=host, port=port, token=reader_token)
assert set(reader.catalog.services()[1]) == {"svc-a"}, reader.catalog.services()[1]
assert len(reader.catalog.service("svc-a")[1]) == 1
assert reader.catalog.service("svc-b")[1] == []
assert reader.health.service("svc-b")[1] == []
assert reader.health.service("loose")[1] == []
assert len(reader.health.service("svc-a")[1]) == 1
assert c.catalog.services()[1] == {}, "KV grants see no namespace"
# The agent's own view too.
assert {v["Service"] for v in reader.agent.services().values()} == {"svc-a"}
assert {"svc-a", "svc-b", "loose"} <= {v["Service"] for v in anon.agent.services().values()}
print("ok")
