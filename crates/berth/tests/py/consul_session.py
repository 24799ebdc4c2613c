"""Sessions through py-consul: a TTL session with behavior=delete expires
and takes its key along; a lock is held by one session, lost when its
session is destroyed, and blocked by the lock-delay."""
import sys
import time

import consul

host, port, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = consul.Consul(host=host, port=port)


def wait(what, secs, pred):
    deadline = time.time() + secs
    while not pred():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# Lock, lock-delay.
s1 = c.session.create(name="one", lock_delay=2)
s2 = c.session.create(name="two", lock_delay=0)
lock = f"{prefix}/leader"
assert c.kv.put(lock, "s1", acquire=s1) is True
assert c.kv.put(lock, "s2", acquire=s2) is False, "two holders"
assert c.kv.get(lock)[1]["Session"] == s1
assert c.session.destroy(s1) is True
e = c.kv.get(lock)[1]
assert "Session" not in e or not e["Session"], e
assert c.session.info(s1)[1] is None
# Within the 2 s lock-delay of s1, nobody gets the key...
assert c.kv.put(lock, "s2", acquire=s2) is False, "acquired during the lock-delay"
# ...after it, s2 does.
wait("the lock after its lock-delay", 10, lambda: c.kv.put(lock, "s2", acquire=s2))
e = c.kv.get(lock)[1]
assert e["Session"] == s2 and e["LockIndex"] == 2, e
assert c.kv.put(lock, "free", release=s2) is True
assert "Session" not in c.kv.get(lock)[1]

# TTL with behavior=delete: expires without renewal, its key goes.
ttl = c.session.create(name="ttl", ttl=10, behavior="delete", lock_delay=0)
key = f"{prefix}/ephemeral"
assert c.kv.put(key, "here", acquire=ttl) is True
info = c.session.info(ttl)[1]
assert info["TTL"] == "10s" and info["Behavior"] == "delete", info
renewed = c.session.renew(ttl)
assert renewed["ID"] == ttl, renewed
# Consul invalidates within twice the TTL.
wait("the TTL session to expire", 30, lambda: c.session.info(ttl)[1] is None)
assert c.kv.get(key)[1] is None, "the key outlived its session"
print("ok")
