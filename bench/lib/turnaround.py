"""Where a proxied request's time goes, from a packet capture on lo.

Reads `tcpdump -tt -nn` lines on stdin, of a capture holding a proxy's
front port and its backends' ports, and prints three distributions:
  front: a request reaching the proxy -> the proxy's answer leaving it
         (the proxy's own time plus the backend's);
  back:  a request reaching a backend -> the backend's answer;
  client: an answer reaching the client -> its next request (wrk's own
         time, including its wait for a core).
Usage: tcpdump -r F -tt -nn | python3 turnaround.py FRONT_PORT BACKEND_PORT...
"""
import sys


def port(addr):
    return int(addr.rstrip(":").rsplit(".", 1)[1])


def main():
    front_port = int(sys.argv[1])
    backends = {int(p) for p in sys.argv[2:]}
    asked, answered, backend_asked = {}, {}, {}
    front, back, client = [], [], []
    for line in sys.stdin:
        f = line.split()
        if len(f) < 6 or " length " not in line or line.rstrip().endswith("length 0"):
            continue
        t, src, dst = float(f[0]), port(f[2]), port(f[4])
        if dst == front_port:
            if src in answered:
                client.append(t - answered.pop(src))
            asked[src] = t
        elif src == front_port:
            if dst in asked:
                front.append(t - asked.pop(dst))
            answered[dst] = t
        elif dst in backends:
            backend_asked[src] = t
        elif src in backends and dst in backend_asked:
            back.append(t - backend_asked.pop(dst))
    for name, xs in (("front", front), ("back", back), ("client", client)):
        xs.sort()
        n = len(xs)
        if n == 0:
            print(f"{name}: no samples")
            continue
        q = [xs[min(n - 1, int(n * p))] * 1000 for p in (0.5, 0.9, 0.99, 0.999)]
        print(f"{name:6} n={n:6} p50 {q[0]:.3f} p90 {q[1]:.3f} p99 {q[2]:.3f} p99.9 {q[3]:.3f} ms")


if __name__ == "__main__":
    main()
