#!/usr/bin/env python3
"""Peak memory of a hub under 64 parallel 8 MB bodies (issue 13, item 8).

Usage: benches/intake_rss.py <lienthong binary> [<baseline binary>] [--rounds N]

For each binary, and for each round, a fresh `lienthong serve` (the test
fixtures' schemas, one partner `portal` with an API key) receives 64 bodies of
8 MB at once, in two cases:

  unauth  64 bodies with no credentials (answered 401)
  422     64 bodies from the partner that parse but fail the schema (an 8 MB
          string and a negative `seq`), so each is read, parsed, validated and
          recorded as rejected
  values  64 bodies from the partner holding an array of 4 million one-digit
          numbers: the cheapest bytes to send and the most expensive tree to
          build (refused with 400 by limits::MAX_NODES before a tree is built)

and the script reports the hub's peak resident memory (VmHWM), its resident
memory 2 s after the last answer (VmRSS), the answers by status, and the wall
time. Rounds of the two binaries alternate, so both see the same machine.
Nothing here is a pass/fail test; BENCHMARKS.md records the figures.
"""
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FX = os.path.join(REPO, "tests", "fixtures", "hub")
KEY = "bench-portal-key"
PARALLEL = 64
SIZE = 8 * 1024 * 1024 - 64


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def body_422():
    return b'{"code":"RSS","seq":-1,"note":"' + b"x" * (SIZE - 40) + b'"}'


def body_values():
    head = b'{"code":"RSS","seq":-1,"pad":['
    n = (SIZE - len(head) - 2) // 2
    return head + b"1," * (n - 1) + b"1]}"


def body_unauth():
    return b'{"code":"RSS","seq":1,"note":"' + b"x" * (SIZE - 40) + b'"}'


def start(binary, workdir):
    port = free_port()
    cfg = os.path.join(workdir, "lienthong.yaml")
    with open(cfg, "w") as f:
        f.write(
            f"""server:
  listen: 127.0.0.1:{port}
  drain_deadline: 1s
store:
  data_dir: {workdir}/data
paths:
  mappings: {FX}/mappings
  schemas: {FX}/schemas
destinations:
  sink:
    url: "http://127.0.0.1:9/"
intake:
  rate_limit: {{ per_second: 100000, burst: 100000 }}
partners:
  portal:
    api_key_sha256: {hashlib.sha256(KEY.encode()).hexdigest()}
"""
        )
    proc = subprocess.Popen(
        [binary, "serve", "--config", cfg],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "error"},
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{binary} did not start on port {port}")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def send(port, body, auth, out):
    head = (
        "POST /inbound/portal/dossier.event HTTP/1.1\r\nHost: bench\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if auth:
        head += f"Authorization: Bearer {KEY}\r\n"
    head += "\r\n"
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=120)
        s.sendall(head.encode())
        try:
            s.sendall(body)
        except OSError:
            pass  # answered before the body was read, and closed
        answer = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        s.close()
        out.append(answer.split(b" ", 2)[1].decode() if answer else "none")
    except OSError as e:
        out.append(type(e).__name__)


def round_(binary, case):
    with tempfile.TemporaryDirectory() as d:
        proc, port = start(binary, d)
        time.sleep(0.5)
        body = {"422": body_422, "values": body_values, "unauth": body_unauth}[case]()
        base = status_kib(proc.pid, "VmRSS")
        out = []
        threads = [
            threading.Thread(target=send, args=(port, body, case != "unauth", out))
            for _ in range(PARALLEL)
        ]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - t0
        time.sleep(2)
        peak = status_kib(proc.pid, "VmHWM")
        after = status_kib(proc.pid, "VmRSS")
        proc.kill()
        proc.wait()
        return {
            "case": case,
            "idle_mib": round(base / 1024),
            "peak_mib": round(peak / 1024),
            "after_mib": round(after / 1024),
            "wall_s": round(wall, 1),
            "answers": dict(Counter(out)),
        }


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = 3
    if "--rounds" in sys.argv:
        rounds = int(sys.argv[sys.argv.index("--rounds") + 1])
        args = [a for a in args if a != str(rounds)]
    if not args:
        raise SystemExit(__doc__)
    binaries = args[:2]
    print(f"load average at start: {os.getloadavg()}")
    for r in range(1, rounds + 1):
        for case in ("unauth", "422", "values"):
            for b in binaries:
                res = round_(b, case)
                name = "new" if b == binaries[0] else "baseline"
                print(json.dumps({"round": r, "binary": name, **res}), flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
