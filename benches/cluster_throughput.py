#!/usr/bin/env python3
"""Events per second through a cluster of `nurture serve --store` processes.

    python3 benches/cluster_throughput.py [EVENTS] [CONTACTS] [PROCESSES...]
    (defaults: 100000 10000 1 2 4; a process count of 0 runs one
    `nurture serve --state` on an SQLite file instead, for comparison)

For each process count: a fresh schema on the PostgreSQL server of
NURTURE_TEST_POSTGRES (default the local one), `--init --partitions 64`,
that many release-built processes on loopback, and the benchmark workload
(`nurture-gen`, the lead-nurturing example) posted by 8 client threads in
batches of 500 (BATCH in the environment), each thread the events of its own contacts, in order, to
the processes in turn. Timed from the first post until every partition has
run its whole inbox. Prints events/s and PostgreSQL commits per event
(pg_stat_database's xact_commit over the run).
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.environ.get("NURTURE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
BIN = os.path.join(ROOT, "target", "release", "nurture")
# Events per request (`BATCH=20 python3 ...` for small requests).
BATCH = int(os.environ.get("BATCH", "500"))


def psql(sql):
    out = subprocess.run(["psql", BASE, "-Atqc", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def fnv(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    args = [int(a) for a in sys.argv[1:]]
    events = args[0] if len(args) > 0 else 100_000
    contacts = args[1] if len(args) > 1 else 10_000
    counts = args[2:] or [1, 2, 4]
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "nurture",
                    "--example", "nurture-gen"], check=True, cwd=ROOT)
    work = tempfile.mkdtemp()
    prog = os.path.join(work, "prog")
    os.mkdir(prog)
    with open(os.path.join(ROOT, "examples", "00_schema.flow")) as f:
        schema = [l for l in f if not l.startswith(("quiet hours", "limit "))]
    with open(os.path.join(prog, "00_schema.flow"), "w") as f:
        f.writelines(schema)
    with open(os.path.join(ROOT, "examples", "lead_nurturing.flow")) as src, \
            open(os.path.join(prog, "lead_nurturing.flow"), "w") as dst:
        dst.write(src.read())
    gen = subprocess.run([os.path.join(ROOT, "target", "release", "examples", "nurture-gen"),
                          str(contacts), str(events), "42"], check=True, capture_output=True, text=True)
    lines = gen.stdout.splitlines()
    workers = 8
    streams = [[] for _ in range(workers)]
    for l in lines:
        c = json.loads(l)["contact"]
        streams[fnv(c) % workers].append(l)
    print(f"workload: {len(lines)} events, {contacts} contacts, {BATCH} a request; "
          f"{os.cpu_count()} cores; PostgreSQL {psql('SHOW server_version')}")
    for n in counts:
        if n == 0:
            single(prog, streams, workers, len(lines))
            continue
        name = f"nurture_bench_{os.getpid()}_{n}"
        psql(f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")
        url = f"{BASE}{'&' if '?' in BASE else '?'}options=-c%20search_path%3D{name}"
        subprocess.run([BIN, "serve", prog, "--store", url, "--init", "--partitions", "64"],
                       check=True, capture_output=True)
        ports = [free_port() for _ in range(n)]
        procs = [subprocess.Popen([BIN, "serve", prog, "--store", url, "--listen", f"127.0.0.1:{p}"],
                                  stderr=subprocess.DEVNULL) for p in ports]
        for p in ports:
            for _ in range(200):
                try:
                    c = http.client.HTTPConnection("127.0.0.1", p, timeout=5)
                    c.request("GET", "/readyz")
                    if c.getresponse().status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.05)
        time.sleep(1.5)  # the processes share the partitions out
        commits0 = int(psql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))
        t0 = time.time()

        def post(i):
            conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=60) for p in ports]
            s = streams[i]
            for k, start in enumerate(range(0, len(s), BATCH)):
                body = "\n".join(s[start:start + BATCH]) + "\n"
                c = conns[(i + k) % len(conns)]
                c.request("POST", "/v1/events", body, {"Content-Type": "application/x-ndjson"})
                r = c.getresponse()
                r.read()
                assert r.status == 202, r.status

        threads = [threading.Thread(target=post, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        accepted = time.time() - t0
        while psql(f"SELECT bool_and(inbox_pos = inbox_head) FROM {name}.nurture_partitions") != "t":
            time.sleep(0.05)
        done = time.time() - t0
        commits = int(psql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")) - commits0
        rejects = psql(f"SELECT count(*) FROM {name}.nurture_rejects")
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        psql(f"DROP SCHEMA {name} CASCADE")
        print(f"{n} processes: {len(lines) / done:8.0f} events/s run "
              f"({len(lines) / accepted:8.0f} events/s accepted), "
              f"{commits / len(lines):.3f} commits/event, {rejects} rejects, {done:.1f} s")


def single(prog, streams, workers, total):
    """One `nurture serve --state` (SQLite): events are run before `202`."""
    work = tempfile.mkdtemp()
    port = free_port()
    proc = subprocess.Popen([BIN, "serve", prog, "--state", os.path.join(work, "s.db"),
                             "--listen", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.05)
    t0 = time.time()

    def post(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        s = streams[i]
        for start in range(0, len(s), BATCH):
            body = "\n".join(s[start:start + BATCH]) + "\n"
            c.request("POST", "/v1/events", body, {"Content-Type": "application/x-ndjson"})
            r = c.getresponse()
            r.read()
            assert r.status == 202, r.status

    threads = [threading.Thread(target=post, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = time.time() - t0
    proc.terminate()
    proc.wait()
    print(f"one process, --state (SQLite): {total / done:8.0f} events/s run and accepted, {done:.1f} s")


if __name__ == "__main__":
    main()
