"""Catalog and health through py-consul: an agent service with an HTTP
check that passes, then fails when its server stops; a TTL check driven
by pass/fail; catalog reads and a registration of an external node; the
passing service in DNS through dig."""
import http.server
import socket
import subprocess
import sys
import threading
import time

import consul

host, port, prefix, dns = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = consul.Consul(host=host, port=port)


def wait(what, secs, pred):
    deadline = time.time() + secs
    while True:
        got = pred()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"fine")

    def log_message(self, *a):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), Ok)
threading.Thread(target=srv.serve_forever, daemon=True).start()
web = f"{prefix}-web"
url = f"http://127.0.0.1:{srv.server_address[1]}/health"
assert c.agent.service.register(web, service_id=f"{web}-1", port=8080, tags=["blue"],
                                check=consul.Check.http(url, "1s")) is True

passing = lambda: c.health.service(web, passing=True)[1]
entries = wait("the HTTP check to pass", 20, passing)
assert entries[0]["Service"]["Port"] == 8080, entries
ids = {ch["CheckID"]: ch["Status"] for ch in entries[0]["Checks"]}
assert ids.get(f"service:{web}-1") == "passing" and ids.get("serfHealth") == "passing", ids

# In DNS while passing.
a = subprocess.run(["dig", "@127.0.0.1", "-p", dns, "+short", f"{web}.service.berth"],
                   capture_output=True, text=True).stdout.split()
assert a == ["127.0.0.1"], a

_, services = c.catalog.services()
assert services.get(web) == ["blue"], services
_, inst = c.catalog.service(web, tag="blue")
assert inst[0]["ServiceID"] == f"{web}-1", inst
assert c.catalog.service(web, tag="green")[1] == []
assert f"{web}-1" in c.agent.services()

# The server stops: the check turns critical, the instance leaves ?passing.
srv.shutdown()
srv.server_close()
wait("the HTTP check to fail", 20, lambda: not passing())
_, checks = c.health.checks(web)
assert checks[0]["Status"] == "critical", checks
_, crit = c.health.state("critical")
assert any(ch["CheckID"] == f"service:{web}-1" for ch in crit), crit

# A TTL check, driven by its owner.
ttl_id = f"{prefix}-ttl"
assert c.agent.check.register(ttl_id, check=consul.Check.ttl("30s"), check_id=ttl_id) is True
assert c.agent.check.ttl_pass(ttl_id, "all good") is True
node = c.agent.self()["Config"]["NodeName"]
_, mine = c.health.node(node)
ttl = [ch for ch in mine if ch["CheckID"] == ttl_id][0]
assert ttl["Status"] == "passing" and ttl["Output"] == "all good", ttl
assert c.agent.check.ttl_fail(ttl_id, "broken") is True
assert [ch for ch in c.health.node(node)[1] if ch["CheckID"] == ttl_id][0]["Status"] == "critical"

# A session resting on a check ends when the check turns critical.
sc = f"{prefix}-sesscheck"
assert c.agent.check.register(sc, check=consul.Check.ttl("60s"), check_id=sc) is True
assert c.agent.check.ttl_pass(sc) is True
sid = c.session.create(checks=["serfHealth", sc], lock_delay=0)
assert c.session.info(sid)[1]["NodeChecks"] == ["serfHealth", sc]
try:
    c.session.create(checks=["no-such-check"])
    raise AssertionError("a session on a missing check was created")
except consul.base.ConsulException as ex:
    assert "Missing check" in str(ex), ex
assert c.agent.check.ttl_fail(sc) is True
wait("the session on a failed check to end", 10, lambda: c.session.info(sid)[1] is None)

# An external node, registered and deregistered through the catalog.
ext = f"{prefix}-ext"
assert c.catalog.register(ext, "10.20.30.40", service={"Service": f"{prefix}-db", "Port": 5432}) is True
assert any(n["Node"] == ext for n in c.catalog.nodes()[1])
_, info = c.catalog.node(ext)
assert info["Node"]["Address"] == "10.20.30.40" and f"{prefix}-db" in info["Services"], info
assert c.catalog.deregister(ext) is True
assert c.catalog.node(ext)[1] is None

assert c.agent.service.deregister(f"{web}-1") is True
assert c.catalog.service(web)[1] == []
print("ok")
