#!/usr/bin/env python3
"""The SL benchmark driver (issue 5). bench/run installs the tools, builds
SL and calls this; see bench/README.md for how to read what it prints.

Python 3 standard library only. Everything listens on 127.0.0.1; every
process started here is stopped by its PID (and listed in $SLBENCH_PIDS so
that bench/run's EXIT trap can stop it too if this script is killed).
"""

import base64
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
RELEASE = os.path.join(ROOT, "target", "release")
SLSERVER = os.path.join(RELEASE, "slserver")
SKELETON = os.path.join(RELEASE, "libsl_skeleton.so")

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECS = float(os.environ.get("BENCH_SECONDS", "4"))
CONNS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
# Requests per write in the pipelined runs of scenario 7 (wrk/pipeline.lua).
PIPELINE = int(os.environ.get("BENCH_PIPELINE", "16"))
SKIP_CRITERION = os.environ.get("BENCH_SKIP_CRITERION") == "1"
# A flat `perf` profile of SL and of nginx-lua under the pinned hello load,
# where perf is installed and works (BENCH_PERF=0 skips it).
PERF = os.environ.get("BENCH_PERF", "1") != "0" and shutil.which("perf") is not None
# Idle warm instances per action for the SL servers of the table (all but
# `sl-default`, which keeps the shipped default of 4). With the default, a
# burst of N requests for one action in one reactor turn starts N runs at
# once and N - 4 of them build a cold Lua state (see bench/RESULTS.md).
WARM = int(os.environ.get("BENCH_WARM_INSTANCES", "128"))
CLK = os.sysconf("SC_CLK_TCK")
BODY = '{"name":"x"}'
EXPECTED = b'"Hello x"'

# Every limit set (scenario 2): KiB, ms, VM instructions.
TIGHT = {"maxmem": 1024, "timeout": 100, "instructions": 100000}
# Scenario 9: back-to-back submit runs of this many seconds on one server,
# 60 s in all; the paced load of the latency run waits this long between
# requests on each connection.
STEADY_RUNS, STEADY_SECS = 12, 5
PACE_MS = 4
# Scenario 10: finished records stored before the runs.
BIG_STORE = int(os.environ.get("BENCH_BIG_STORE", "1000000"))
# Scenario 5: the spinning action's timeout (issue 5: "under a 2 s timeout").
SPIN_TIMEOUT_MS = 2000
# Scenario 11 (#18): the partitions of the topics published to, the
# messages of a batch publish, the subscription's batch_size, and how
# long the paced publishes of the delivery-latency run last.
EVENT_PARTITIONS, EVENT_BATCH, EVENT_SUB_BATCH = 4, 100, 10
EVENT_SECS = float(os.environ.get("BENCH_EVENT_SECONDS", "10"))
# BENCH_ONLY=name,name,...: run only these scenarios (and print only their rows).
SCENARIOS = {
    "criterion": "the in-process benchmarks (criterion, LuaJIT)",
    "pinned": "scenarios 1, 2 and 6, pinned",
    "unpinned": "scenarios 1, 2 and 7, unpinned",
    "hey": "scenario 3",
    "async": "scenario 4 (with nginx-lua's sequential requests)",
    "fairness": "scenario 5",
    "create": "scenario 8",
    "steady": "scenario 9",
    "store": "scenario 10",
    "events": "scenario 11 (#18)",
    "perf": "the perf profiles",
    "memory": "the RSS figures",
}
ONLY = {x.strip() for x in os.environ.get("BENCH_ONLY", "").split(",") if x.strip()}
if ONLY - SCENARIOS.keys():
    sys.exit(f"BENCH_ONLY: unknown {', '.join(sorted(ONLY - SCENARIOS.keys()))}; "
             f"scenarios: {', '.join(SCENARIOS)}")


def wanted(name):
    """Whether scenario `name` runs (all do unless BENCH_ONLY names some)."""
    return not ONLY or name in ONLY


WORK = tempfile.mkdtemp(prefix="slbench-")
os.chmod(WORK, 0o755)  # nginx workers (user nobody) read hello.lua from here
PIDFILE = os.environ.get("SLBENCH_PIDS", os.path.join(WORK, "pids"))
STARTED = []  # Proc objects, stopped in reverse order at exit


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


class Proc:
    """A server started here: stopped by PID, never by name."""

    def __init__(self, name, argv, cwd=None):
        self.name = name
        self.out = open(os.path.join(WORK, f"{name}.out"), "wb")
        self.err = open(os.path.join(WORK, f"{name}.err"), "wb")
        self.p = subprocess.Popen(argv, cwd=cwd, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)
        self.pid = self.p.pid
        with open(PIDFILE, "a") as f:
            f.write(f"{self.pid}\n")
        STARTED.append(self)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=10)
        self.out.close()
        self.err.close()

    def stderr_tail(self):
        with open(os.path.join(WORK, f"{self.name}.err"), "rb") as f:
            return f.read()[-2000:].decode(errors="replace")


def stop_all():
    while STARTED:
        p = STARTED.pop()
        try:
            p.stop()
        except Exception as e:  # keep stopping the others
            log(f"stopping {p.name} (pid {p.pid}): {e}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.stderr_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not listen on {port} within {timeout} s")


def children(pid):
    try:
        out = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        return out
    except OSError:
        return []


def cpu_seconds(pids):
    """utime + stime of the processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / CLK


def machine_busy_seconds():
    """CPU seconds spent not idle (steal included): [all CPUs, cpu0, cpu1, ...]."""
    busy = []
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            fields = [int(x) for x in line.split()[1:9]]
            idle = fields[3] + fields[4]  # idle + iowait
            busy.append((sum(fields) - idle) / CLK)
    return busy


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def set_affinity(pids, cpus):
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass


# ---------------------------------------------------------------- targets


class SL:
    """An slserver with its own config."""

    def __init__(self, name, workers=1, store="null", record_blocking=False, plugin=False, warm=WARM, metrics=True):
        self.name = name
        self.port = free_port()
        d = os.path.join(WORK, name)
        os.makedirs(d)
        lines = [
            f"Server {{ workers = {workers}, metrics = {'true' if metrics else 'false'} }}",
            'Logger { level = "warn" }',
            f"Invocations {{ record_blocking = {'true' if record_blocking else 'false'} }}",
            "Nulldb {}" if store == "null" else f'Sqlite {{ path = "{d}/sl.db" }}',
        ]
        if warm is not None:
            lines.append(f"Limits {{ warm_instances = {warm} }}")
        if plugin:
            lines.append(f'Plugin "skeleton" {{ file = "{SKELETON}" }}')
        cfg = os.path.join(d, "config.lua")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.db = f"{d}/sl.db"
        self.proc = Proc(name, [SLSERVER, "--config", cfg, "--listen", f"127.0.0.1:{self.port}"], cwd=d)
        wait_port(self.port, self.proc)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def pids(self):
        return [self.proc.pid]

    def request(self, method, path, body=None):
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def create(self, name, source, **limits):
        code = base64.b64encode(source.encode()).decode()
        status, body = self.request("POST", "/actions", json.dumps({"name": name, "code": code, **limits}))
        if status != 201:
            raise RuntimeError(f"{self.name}: create {name}: {status} {body[:300]!r}")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


class Nginx:
    """nginx with the lua module; worker_processes = workers."""

    def __init__(self, name, workers):
        self.name = name
        self.port = free_port()
        prefix = os.path.join(WORK, name) + "/"
        os.makedirs(prefix + "body")
        shutil.copy(os.path.join(BENCH, "hello.lua"), prefix + "hello.lua")
        with open(os.path.join(BENCH, "nginx", "nginx.conf.in")) as f:
            conf = f.read()
        for k, v in {"@WORKERS@": str(workers), "@PORT@": str(self.port), "@PREFIX@": prefix, "@BENCH@": BENCH}.items():
            conf = conf.replace(k, v)
        with open(prefix + "nginx.conf", "w") as f:
            f.write(conf)
        self.proc = Proc(name, ["nginx", "-p", prefix, "-c", prefix + "nginx.conf", "-g", "daemon off;"])
        wait_port(self.port, self.proc)
        end = time.time() + 10
        while len(children(self.proc.pid)) < workers and time.time() < end:
            time.sleep(0.05)

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


# ---------------------------------------------------------------- load generators


def run_measured(argv, server_pids, timeout):
    """Runs a load generator; returns (stdout, wall s, server CPU s, generator CPU s)."""
    before = cpu_seconds(server_pids)
    busy_before = machine_busy_seconds()
    t0 = time.monotonic()
    errf = open(os.path.join(WORK, "loadgen.err"), "wb")
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL)
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    try:
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    finally:
        killer.cancel()
        p.stdout.close()
        errf.close()
    wall = time.monotonic() - t0
    after = cpu_seconds(server_pids)
    busy = [a - b for a, b in zip(machine_busy_seconds(), busy_before)]
    if p.returncode != 0:
        with open(os.path.join(WORK, "loadgen.err"), "rb") as f:
            raise RuntimeError(f"{argv[0]} failed ({p.returncode}): {f.read()[-500:]!r}")
    scpu, gcpu = after - before, ru.ru_utime + ru.ru_stime
    # Everything else the machine did meanwhile: other engineers' jobs,
    # this driver, the kernel's steal time.
    other = max(0.0, busy[0] - scpu - gcpu)
    cpu = {"scpu": 100 * scpu / wall, "gcpu": 100 * gcpu / wall, "ocpu": 100 * other / wall,
           "busy": [100 * b / wall for b in busy[1:]]}
    return out.decode(errors="replace"), wall, cpu


def wrk(target, path, secs, pinned, threads=1, conns=CONNS, script="post.lua", env=None, body=BODY):
    """wrk against target; pinned: server on CPU 0, wrk on CPU 1."""
    set_affinity(target.pids(), {0} if pinned else {0, 1})
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{int(secs)}s", "--timeout", "10s",
            "-s", os.path.join(BENCH, "wrk", script), target.url(path)]
    if pinned:
        argv = ["taskset", "-c", "1"] + argv
    old = {k: os.environ.get(k) for k in ["WRK_BODY", *(env or {})]}
    os.environ["WRK_BODY"] = body
    os.environ.update(env or {})
    try:
        out, wall, cpu = run_measured(argv, target.pids(), secs + 60)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        set_affinity(target.pids(), {0, 1})
    m = re.search(r"WRKJSON (\{.*\})", out)
    if not m:
        raise RuntimeError(f"no wrk summary in: {out[-500:]}")
    j = json.loads(m.group(1))
    dur = j["duration_us"] / 1e6
    errors = sum(j[k] for k in ["connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"])
    return {
        "rps": j["requests"] / dur, "p50": j["p50_us"] / 1000, "p99": j["p99_us"] / 1000,
        "requests": j["requests"], "errors": errors, **cpu,
    }


def hey(target, path, n=10000, c=100):
    """The seed's own benchmark: hey -n 10000 -c 100, unpinned."""
    argv = ["hey", "-n", str(n), "-c", str(c), "-m", "POST", "-T", "application/json", "-d", BODY, target.url(path)]
    out, wall, cpu = run_measured(argv, target.pids(), 120)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {int(a): float(b) * 1000 for a, b in re.findall(r"(\d+)%+ in ([\d.]+) secs", out)}
    ok = sum(int(x) for x in re.findall(r"\[200\]\s+(\d+) responses", out))
    return {"rps": rps, "p50": pct[50], "p99": pct[99], "requests": n, "errors": n - ok, **cpu}


def percentile(xs, q):
    xs = sorted(xs)
    i = min(len(xs) - 1, max(0, int(round(q / 100 * len(xs) + 0.5)) - 1))
    return xs[i]


def sequential(fn, n):
    """Runs fn() n times one after the other; latency percentiles in ms."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50": percentile(times, 50), "p99": percentile(times, 99), "rps": n / (sum(times) / 1000),
            "requests": n, "errors": 0, "scpu": None, "gcpu": None, "ocpu": None, "busy": None}


def client(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)


class LeanClient:
    """A keep-alive HTTP/1.1 client that does only what a latency loop
    needs: one request at a time, answers with a Content-Length. Under
    load http.client's own work (on the CPU it shares with wrk) added
    0.2 to 0.4 ms to each request it timed."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, method, path, body=b"", expect=200):
        if isinstance(body, str):
            body = body.encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.sock.sendall(head.encode() + body)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self.buf += self._recv()
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        rest = self.buf[end + 4:]
        status, length = int(lines[0].split(" ", 2)[1]), None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"{method} {path}: an answer without Content-Length: {lines}")
        while len(rest) < length:
            rest += self._recv()
        data, self.buf = rest[:length], rest[length:]
        if status != expect:
            raise RuntimeError(f"{method} {path}: {status} {data[:200]!r}")
        return data

    def _recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self):
        self.sock.close()


def post(conn, path, body, expect):
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != expect:
        raise RuntimeError(f"POST {path}: {r.status} {data[:200]!r}")
    return data


def get(conn, path, expect=200):
    conn.request("GET", path)
    r = conn.getresponse()
    data = r.read()
    if r.status != expect:
        raise RuntimeError(f"GET {path}: {r.status} {data[:200]!r}")
    return data


# ---------------------------------------------------------------- scenarios


def check(target, path, expect=EXPECTED, method="POST"):
    c = client(target.port)
    if method == "POST":
        data = post(c, path, BODY, 200)
    else:
        data = get(c, path)
    c.close()
    if data != expect:
        raise RuntimeError(f"{target.name}{path} answered {data!r}, expected {expect!r}")


def async_round(sl, results):
    """Scenario 4, on the shipped configuration (SQLite, records on): blocking
    hello and submit throughput on the same server, the drain of what was
    submitted, submit-to-result latency."""
    results.setdefault("s4_block", []).append(wrk(sl, "/actions/hello/block", 2, pinned=True))
    time.sleep(0.3)
    r = wrk(sl, "/actions/hello", 2, pinned=True)
    # Drained when the store holds no queued or running record (read from
    # the database file: a marker submitted now could start before the
    # backlog on a server with room).
    t0 = time.monotonic()
    db = sqlite3.connect(f"file:{sl.db}?mode=ro", uri=True, timeout=30)
    while time.monotonic() - t0 < 120:
        left = db.execute("SELECT count(*) FROM invocations WHERE status IN ('queued', 'running')").fetchone()[0]
        if left == 0:
            break
        time.sleep(0.05)
    db.close()
    drain = time.monotonic() - t0
    r["drain_s"] = drain
    r["e2e_rps"] = r["requests"] / (2 + drain)
    results.setdefault("s4_submit", []).append(r)
    c = client(sl.port)

    def roundtrip():
        iid = json.loads(post(c, "/actions/hello", BODY, 202))["InvocationId"]
        data = get(c, f"/invocation/{iid}?wait=5")
        if data != EXPECTED:
            raise RuntimeError(f"async result {data!r}")

    results.setdefault("s4_latency", []).append(sequential(roundtrip, 100))
    c.close()


def unfinished(sl):
    """Queued and running records in an SL server's SQLite file."""
    db = sqlite3.connect(f"file:{sl.db}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM invocations WHERE status IN ('queued', 'running')").fetchone()[0]
    finally:
        db.close()


def drain(sl, limit=120):
    """Waits until the server has run everything queued; returns the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit and unfinished(sl):
        time.sleep(0.05)
    return time.monotonic() - t0


def steady_round(sl, results):
    """Scenario 9, on the shipped configuration: submits for 60 s on one
    server (back-to-back wrk runs, the backlog left to grow), the queue
    depth after each run; then submit-to-result latency while a paced load
    submits at half the median rate of those runs."""
    runs = []
    for _ in range(STEADY_RUNS):
        r = wrk(sl, "/actions/hello", STEADY_SECS, pinned=True)
        r["backlog"] = unfinished(sl)
        runs.append(r)
    results["s9_steady"] = runs
    drain(sl)
    half = med([r["rps"] for r in runs]) / 2
    conns = max(1, round(half * PACE_MS / 1000))
    background = {}

    def paced():
        background["r"] = wrk(sl, "/actions/hello", 8, pinned=True, conns=conns, script="paced.lua",
                              env={"WRK_DELAY_MS": str(PACE_MS)})

    t = threading.Thread(target=paced)
    t.start()
    time.sleep(1.5)
    c = LeanClient(sl.port)
    # The client runs beside wrk (server on CPU 0, load on CPU 1). Each
    # submit-to-result round trip alternates with two requests that need
    # no commit (a blocking hello, then /ping) on the same connection: what
    # this client, load and machine take for two requests at all.
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {1})
    times, floor = [], []
    try:
        while t.is_alive() and len(times) < 2000:
            t0 = time.perf_counter()
            iid = json.loads(c.request("POST", "/actions/hello", BODY, 202))["InvocationId"]
            data = c.request("GET", f"/invocation/{iid}?wait=5")
            if data != EXPECTED:
                raise RuntimeError(f"async result {data!r}")
            times.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.0025)
            t0 = time.perf_counter()
            c.request("POST", "/actions/hello/block", BODY)
            c.request("GET", "/ping")
            floor.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.0025)
    finally:
        os.sched_setaffinity(0, cpus)
    t.join()
    c.close()
    # The roundtrips of the last half second ran with no load: drop them.
    times, floor = (xs[:-50] if len(xs) > 100 else xs for xs in (times, floor))
    bg = background["r"]
    results["s9_half"] = {"p50": percentile(times, 50), "p99": percentile(times, 99), "n": len(times),
                          "floor_p50": percentile(floor, 50), "floor_p99": percentile(floor, 99),
                          "target_rps": half, "load_rps": bg["rps"], "errors": bg["errors"]}


def fill_records(sl, n):
    """Writes n finished records of `hello` into an SL server's SQLite
    file (one transaction, beside the running server), finished over the
    last n ms: all within retention."""
    now = int(time.time() * 1000)
    db = sqlite3.connect(sl.db, timeout=60)
    db.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) "
        "INSERT INTO invocations (id, action, version, status, is_async, args, result, logs, created, started, "
        "finished, duration_ms, instructions, peak_memory, attempts, size) "
        "SELECT printf('00000000-0000-7000-8000-%012d', x), 'hello', 1, 'succeeded', x % 2, '{\"name\":\"x\"}', "
        "'\"Hello x\"', '', ?2 - ?1 + x - 1, ?2 - ?1 + x - 1, ?2 - ?1 + x, 0, 40, 30000, 1, 176 FROM c",
        (n, now))
    # The records' total the store keeps (what its budget reads) moves with them.
    db.execute("UPDATE counters SET value = value + ?1 * 176 WHERE name = 'bytes'", (n,))
    db.commit()
    # Copy the write-ahead log into the database now, not in the server's
    # next commits (which would do it for the measured runs).
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    got = db.execute("SELECT count(*) FROM invocations").fetchone()[0]
    db.close()
    return got


def big_store(results, hello):
    """Scenario 10, on the shipped configuration: blocking hello and submits
    on a server whose store holds BIG_STORE finished records, against one
    with an empty store, alternating (each submit run drained before the
    next measurement)."""
    empty = SL("sl-empty", store="sqlite", record_blocking=True, warm=None)
    big = SL("sl-big", store="sqlite", record_blocking=True, warm=None)
    for s in [empty, big]:
        s.create("hello", hello)
        check(s, "/actions/hello/block")
    t0 = time.monotonic()
    results["s10_stored"] = fill_records(big, BIG_STORE)
    results["s10_fill_s"] = time.monotonic() - t0
    for rnd in range(5):
        order = [(empty, "empty"), (big, "big")] if rnd % 2 == 0 else [(big, "big"), (empty, "empty")]
        for s, name in order:
            results.setdefault(f"s10_block_{name}", []).append(wrk(s, "/actions/hello/block", 3, pinned=True))
            time.sleep(0.3)
        for s, name in order:
            results.setdefault(f"s10_submit_{name}", []).append(wrk(s, "/actions/hello", 3, pinned=True))
            drain(s)
            time.sleep(0.3)
    for s in [empty, big]:
        s.proc.stop()
        STARTED.remove(s.proc)


def events_server(name):
    """Scenario 11's server: the shipped configuration (SQLite, records on,
    warm_instances = 4) with `hello`, the subscriber `seen.lua`, and three
    topics: `bench` (publish throughput), `lat` (the delivery-latency run;
    a subscription reads it during that run only) and `seen` (1 partition:
    what the subscriber saw)."""
    sl = SL(name, store="sqlite", record_blocking=True, warm=None)
    sl.create("hello", open(os.path.join(BENCH, "hello.lua")).read())
    sl.create("seen", open(os.path.join(BENCH, "seen.lua")).read())
    for name, partitions in [("bench", EVENT_PARTITIONS), ("lat", EVENT_PARTITIONS), ("seen", 1)]:
        status, body = sl.request("POST", "/topics", json.dumps({"name": name, "partitions": partitions}))
        if status != 201:
            raise RuntimeError(f"{sl.name}: create topic {name}: {status} {body[:300]!r}")
    check(sl, "/actions/hello/block")
    status, body = sl.request("POST", "/topics/bench?key=check", BODY)
    if status != 201:
        raise RuntimeError(f"{sl.name}: publish: {status} {body[:300]!r}")
    return sl


def sl_json(sl, method, path, body=None, expect=200):
    status, data = sl.request(method, path, body)
    if status != expect:
        raise RuntimeError(f"{sl.name}: {method} {path}: {status} {data[:300]!r}")
    return json.loads(data)


def events_round(rnd, results):
    """Scenario 11 (#18), on the shipped configuration (SQLite, records on),
    pinned, on a fresh server each round (a round stores some 2 million
    messages; the next one starts from an empty store again): blocking
    hello and unbatched publishes (one message a request, a new key each,
    to 4 partitions) on the same server, the first of the two alternating
    by round; batches of EVENT_BATCH; then publish-to-delivery latency
    while a paced wrk publishes at half this round's unbatched rate."""
    sl = events_server(f"sl-events-r{rnd + 1}")
    runs = [("s11_block", "/actions/hello/block", "post.lua"), ("s11_publish", "/topics/bench", "publish.lua")]
    for key, path, script in (runs if rnd % 2 == 0 else runs[::-1]):
        results.setdefault(key, []).append(wrk(sl, path, SECS, pinned=True, script=script))
        time.sleep(0.3)
    r = wrk(sl, "/topics/bench/batch", SECS, pinned=True, script="publish_batch.lua",
            env={"WRK_BATCH": str(EVENT_BATCH)})
    # The row's rate is messages; its latencies are per batch.
    r["batches"] = r["rps"]
    r["rps"] *= EVENT_BATCH
    results.setdefault("s11_batch", []).append(r)
    time.sleep(0.3)
    results.setdefault("s11_latency", []).append(delivery_latency(sl, results["s11_publish"][-1]["rps"] / 2))
    sl.proc.stop()
    STARTED.remove(sl.proc)
    # The database (some hundreds of MB); the server's log stays in WORK.
    shutil.rmtree(os.path.dirname(sl.db), ignore_errors=True)


def delivery_latency(sl, rate):
    """Publish-to-delivery latency while a paced wrk publishes about `rate`
    messages a second to `lat` for EVENT_SECS, each payload holding its
    send time. A subscription (batch_size EVENT_SUB_BATCH, max_wait_ms 0,
    from the end) delivers them to `seen.lua`, which publishes one message
    a batch to `seen` with each message's send time and `published`; the
    latency of a message is the `published` the server stamped on its
    `seen` message minus its send time."""
    sub = "lat"
    sl_json(sl, "POST", "/subscriptions", json.dumps({
        "name": sub, "topic": "lat", "action": "seen", "batch_size": EVENT_SUB_BATCH, "max_wait_ms": 0,
        "start": "end"}), expect=201)
    # Delivering once every partition is leased (at once on an embedded store).
    end = time.monotonic() + 10
    while not all(p["owner"] for p in sl_json(sl, "GET", f"/subscriptions/{sub}")["partitions"]):
        if time.monotonic() > end:
            raise RuntimeError(f"{sl.name}: subscription {sub} not claimed within 10 s")
        time.sleep(0.05)
    first = sl_json(sl, "GET", "/topics/seen")["offsets"][0]["next"]
    # wrk sends on a schedule of `rate` a second (publish_paced.lua); each
    # connection waits for its turn on it, so the rate holds while fewer
    # than all the connections wait for answers: room for answers of
    # 2 * PACE_MS on average.
    conns = max(1, round(rate * 2 * PACE_MS / 1000))
    load = wrk(sl, "/topics/lat", EVENT_SECS, pinned=True, conns=conns, script="publish_paced.lua",
               env={"WRK_RATE": f"{rate:.0f}", "WRK_THREADS": "1"})
    # Drained: every partition's cursor past the last message and nothing
    # pending. A batch's `seen` message is stored before its cursor moves.
    t0 = time.monotonic()
    while sl_json(sl, "GET", f"/subscriptions/{sub}")["backlog"] and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    drain_s = time.monotonic() - t0
    seen, offset = {}, first
    while True:
        page = sl_json(sl, "GET", f"/topics/seen/messages?from={offset}&limit=1000")
        if not page:
            break
        for m in page:
            for partition, off, sent, published in m["payload"]:
                # A batch delivered twice (after a failure) counts once: its first delivery.
                seen.setdefault((partition, off), (sent, published, m["published"]))
        offset = page[-1]["offset"] + 1
    info = sl_json(sl, "GET", f"/subscriptions/{sub}")
    total = [delivered - sent for sent, _, delivered in seen.values()]
    stored = [published - sent for sent, published, _ in seen.values()]
    delivered = [delivered - published for _, published, delivered in seen.values()]
    if not total:
        raise RuntimeError(f"{sl.name}: nothing delivered to {sub}")
    return {"p50": percentile(total, 50), "p99": percentile(total, 99), "max": max(total),
            "stored_p50": percentile(stored, 50), "stored_p99": percentile(stored, 99),
            "delivered_p50": percentile(delivered, 50), "delivered_p99": percentile(delivered, 99),
            "n": len(total), "batches": offset - first, "answered": load["requests"], "dead": info["dead"],
            "drain_s": drain_s, "target_rps": rate, "conns": conns, "load": load}


def nginx_sequential(ngx, results, key):
    c = client(ngx.port)
    results.setdefault(key, []).append(sequential(lambda: post(c, "/hello", BODY, 200), 100))
    c.close()


def fairness_round(sl, results, order):
    """Scenario 5: hello p99 alone and while 4 spinning invocations run.

    The spinners time out after 2 s (SPIN_TIMEOUT_MS); wrk starts 0.3 s
    after them and runs for 1 s, so the whole measurement falls inside the
    window where all four spin."""
    def with_spinners():
        outcomes = []

        def spin():
            c = client(sl.port)
            c.request("POST", "/actions/spin/block", body="{}")
            r = c.getresponse()
            outcomes.append((r.status, r.read()))
            c.close()

        threads = [threading.Thread(target=spin) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        r = wrk(sl, "/actions/hello_limits/block", 1, pinned=True)
        for t in threads:
            t.join(timeout=30)
        bad = [o for o in outcomes if o[0] != 500 or b"timeout" not in o[1]]
        if len(outcomes) != 4 or bad:
            raise RuntimeError(f"spinners did not end with timeout: {outcomes}")
        results.setdefault("s5_spin", []).append(r)

    def alone():
        results.setdefault("s5_alone", []).append(wrk(sl, "/actions/hello_limits/block", 1, pinned=True))

    for f in ([alone, with_spinners] if order % 2 == 0 else [with_spinners, alone]):
        f()
        time.sleep(0.3)


def create_round(slc, rnd, results):
    """Scenario 8: create throughput (wrk, unique names) and create-to-first-result."""
    code = base64.b64encode(open(os.path.join(BENCH, "hello.lua"), "rb").read()).decode()
    r = wrk(slc, "/actions", 2, pinned=False, conns=16, script="create.lua",
            env={"WRK_CODE": code, "WRK_PREFIX": f"r{rnd}"})
    results.setdefault("s8_create", []).append(r)
    c = client(slc.port)
    n = [0]

    def create_then_run():
        n[0] += 1
        name = f"seq{rnd}_{n[0]}"
        post(c, "/actions", json.dumps({"name": name, "code": code}), 201)
        data = post(c, f"/actions/{name}/block", BODY, 200)
        if data != EXPECTED:
            raise RuntimeError(f"first result {data!r}")

    results.setdefault("s8_latency", []).append(sequential(create_then_run, 50))
    c.close()


def memory(results):
    """Idle RSS, and RSS with 1000 actions created and each run once (warm)."""
    sl = SL("sl-mem", warm=None)
    time.sleep(1)
    idle = rss_kb(sl.proc.pid)
    src = open(os.path.join(BENCH, "hello.lua")).read()
    c = client(sl.port)
    for i in range(1000):
        code = base64.b64encode(f"local ID = {i}\n{src}".encode()).decode()
        post(c, "/actions", json.dumps({"name": f"a{i:04d}", "code": code}), 201)
    for i in range(1000):
        if post(c, f"/actions/a{i:04d}/block", BODY, 200) != EXPECTED:
            raise RuntimeError("warm-up result")
    c.close()
    time.sleep(1)
    results["rss_idle_kb"] = idle
    results["rss_1000_kb"] = rss_kb(sl.proc.pid)
    sl.proc.stop()
    STARTED.remove(sl.proc)


def criterion(results):
    """The in-process benchmarks (server/benches/invoke.rs) and LuaJIT's."""
    if SKIP_CRITERION:
        return
    crit = os.path.join(ROOT, "target", "criterion")
    subprocess.run(["cargo", "bench", "--quiet", "-p", "sl-server", "--bench", "invoke", "--",
                    "--warm-up-time", "1", "--measurement-time", "3"],
                   cwd=ROOT, check=True, stdout=open(os.path.join(WORK, "criterion.out"), "wb"),
                   stderr=subprocess.STDOUT, timeout=600)
    for group, name in [("warm_invoke", "hello_defaults"), ("warm_invoke", "hello_limits"),
                        ("cold", "instance_and_first_invoke"), ("cold", "compile")]:
        with open(os.path.join(crit, group, name, "new", "estimates.json")) as f:
            e = json.load(f)["median"]
        results[f"crit_{name}"] = {"median_ns": e["point_estimate"], "lo_ns": e["confidence_interval"]["lower_bound"],
                                   "hi_ns": e["confidence_interval"]["upper_bound"]}
    runs = []
    for _ in range(5):
        out = subprocess.run(["luajit", os.path.join(BENCH, "nginx", "inproc.lua"), os.path.join(BENCH, "hello.lua"),
                              "1000000"], check=True, capture_output=True, text=True, timeout=120)
        runs.append(float(out.stdout.strip()))
    results["luajit_inproc_ns"] = runs


def profiles(sl, ngx, results):
    """Flat perf profiles (cpu-clock samples, by library and symbol) of the
    server during one extra pinned run each; not part of the table's figures."""
    if not PERF:
        return
    for name, target, path in [("sl", sl, "/actions/hello_limits/block"), ("nginx", ngx, "/hello")]:
        data = os.path.join(WORK, f"perf-{name}.data")
        rec = Proc(f"perf-{name}", ["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999", "-o", data,
                                    "-p", ",".join(str(p) for p in target.pids())])
        time.sleep(0.5)
        try:
            wrk(target, path, SECS, pinned=True)
        finally:
            rec.stop(signal.SIGINT)
            STARTED.remove(rec)
        report_path = os.path.join(WORK, f"perf-{name}.txt")
        with open(report_path, "w") as out:
            subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-F", "overhead,dso,sym",
                            "--percent-limit", "0.7"], stdout=out, stderr=subprocess.DEVNULL, timeout=120)
        with open(os.path.join(WORK, f"perf-{name}-dso.txt"), "w") as out:
            subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso"],
                           stdout=out, stderr=subprocess.DEVNULL, timeout=120)
        results.setdefault("profiles", []).append(report_path)


# ---------------------------------------------------------------- report


def med(xs):
    return statistics.median(xs)


def fmt_ratio(xs):
    if not xs:
        return "n/a"
    return f"{med(xs):.2f}x [{min(xs):.2f}–{max(xs):.2f}]"


def fmt_num(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def ratios(results, key, ref, field):
    """Per-round ratios key / ref: round i of one against round i of the other."""
    a, b = results.get(key, []), results.get(ref, [])
    return [x[field] / y[field] for x, y in zip(a, b) if y[field]]


def cpu_cells(runs):
    """'server / generator / other' CPU (% of one core), how busy each CPU
    was, and server CPU µs per request."""
    with_cpu = [r for r in runs if r["scpu"] is not None]
    if not with_cpu:
        return "–", "–", "–"
    pct = " / ".join(f"{med([r[k] for r in with_cpu]):.0f}" for k in ["scpu", "gcpu", "ocpu"])
    busy = " / ".join(f"{med(col):.0f}" for col in zip(*[r["busy"] for r in with_cpu]))
    per_req = med([r["scpu"] / 100 / r["rps"] * 1e6 for r in with_cpu if r["rps"]])
    return pct, busy, f"{per_req:.1f}"


def row(results, label, key, ref, note="", p99_ratio=True):
    runs = results.get(key, [])
    if not runs:
        return f"| {label} | not available | | | | | | | | {note} |"
    rps = med([r["rps"] for r in runs])
    p50 = med([r["p50"] for r in runs])
    p99 = med([r["p99"] for r in runs])
    pct, busy, per_req = cpu_cells(runs)
    errs = sum(r["errors"] for r in runs)
    if errs:
        note = (note + f"; {errs} errors").lstrip("; ")
    rps_ratio = fmt_ratio(ratios(results, key, ref, "rps")) if ref else "–"
    p99_ratio = fmt_ratio(ratios(results, key, ref, "p99")) if ref and p99_ratio else "–"
    return (f"| {label} | {fmt_num(rps)} | {rps_ratio} | {p50:.2f} | {p99:.2f} | {p99_ratio} | {pct} | "
            f"{busy} | {per_req} | {note or ref or ''} |")


LABELS = {
    "p_ngx": "nginx-lua, pinned", "p_static": "nginx return 200, pinned", "p_sl": "SL hello, pinned",
    "p_sl_nomet": "SL hello, metrics off, pinned",
    "p_sl_lim": "SL hello, all limits, pinned", "p_sl_rec": "SL hello, all limits, recorded (SQLite, shipped sampling)",
    "p_sl_echo": "SL plugin echo (skeleton), pinned",
    "p_sl_def": "SL hello, all limits, warm_instances = 4 (shipped default)", "u_ngx": "nginx-lua",
    "u_static": "nginx return 200", "u_sl": "SL hello", "u_sl_lim": "SL hello, all limits",
    "u_sl2_lim": "SL workers=2, all limits", "u_ngx2": "nginx-lua workers=2",
    "u_sl_pipe": "SL 1 reactor, all limits, pipelined", "u_sl2_pipe": "SL workers=2, all limits, pipelined",
}


def verdict(xs, ok):
    """'met' / 'missed' on the median; says so when some rounds disagree."""
    if not xs:
        return "not measured"
    m = med(xs)
    v = "met" if ok(m) else "missed"
    agree = sum(1 for x in xs if ok(x) == ok(m))
    if agree < len(xs):
        v += f" ({len(xs) - agree} of {len(xs)} rounds disagree)"
    return v


def v_missed(target):
    """Whether a (label, figure, verdict) target line was missed."""
    return target[2].startswith("missed")


def targets(results):
    """The targets of issue 5, each from figures of this run."""
    T = []

    def ratio_target(label, key, ref, field, ok, extra=""):
        xs = ratios(results, key, ref, field)
        T.append((label, fmt_ratio(xs) + extra, verdict(xs, ok)))

    ge = lambda t: (lambda x: x >= t)  # noqa: E731
    le = lambda t: (lambda x: x <= t)  # noqa: E731
    ratio_target("hello, all limits, 1 reactor vs nginx-lua 1 worker: req/s ≥ 1.0x (pinned)",
                 "p_sl_lim", "p_ngx", "rps", ge(1.0))
    ratio_target("the same, p99 ≤ 1.0x (pinned)", "p_sl_lim", "p_ngx", "p99", le(1.0))
    ratio_target("the same, req/s ≥ 1.0x (unpinned)", "u_sl_lim", "u_ngx", "rps", ge(1.0))
    ratio_target("the same, p99 ≤ 1.0x (unpinned)", "u_sl_lim", "u_ngx", "p99", le(1.0))
    ratio_target("the same with the shipped warm_instances = 4: req/s ≥ 1.0x (pinned)",
                 "p_sl_def", "p_ngx", "rps", ge(1.0))
    ratio_target("hello ≥ 0.9x nginx return 200 (pinned)", "p_sl", "p_static", "rps", ge(0.9))
    ratio_target("hello ≥ 0.9x nginx return 200 (unpinned)", "u_sl", "u_static", "rps", ge(0.9))
    if results.get("workers_available"):
        runs = results.get("u_sl2_lim", [])
        busy = med([r["scpu"] + r["gcpu"] + r["ocpu"] for r in runs]) if runs else 0
        gen = med([r["gcpu"] for r in runs]) if runs else 0
        cap = 100 * os.cpu_count()
        extra = f"; machine busy {busy:.0f}% of {cap}%, wrk {gen:.0f}%"
        ratio_target("workers = 2 ≥ 1.7x its own 1 reactor (req/s, unpinned)", "u_sl2_lim", "u_sl_lim", "rps",
                     ge(1.7), extra)
        if busy >= 0.9 * cap and v_missed(T[-1]):
            label, fig, v = T[-1]
            T[-1] = (label, fig, v + "; the machine was saturated, so the load generator shares the "
                     "bottleneck and this run cannot show the target")
        ratio_target("(reference) nginx-lua 2 workers vs 1 worker, same conditions", "u_ngx2", "u_ngx", "rps",
                     ge(1.7))
        one, two = results.get("u_sl_pipe", []), results.get("u_sl2_pipe", [])
        if one and two:
            busy = med([r["scpu"] + r["gcpu"] + r["ocpu"] for r in two])
            gen = med([r["gcpu"] for r in two])
            cost = [(b["scpu"] / b["rps"]) / (a["scpu"] / a["rps"])
                    for a, b in zip(one, two) if a["rps"] and b["rps"] and a["scpu"] and b["scpu"]]
            extra = (f"; machine busy {busy:.0f}% of {cap}%, wrk {gen:.0f}%; server CPU per request, "
                     f"2 reactors / 1: {fmt_ratio(cost)}")
            ratio_target(f"workers = 2 ≥ 1.7x its own 1 reactor, pipelined x{PIPELINE} (req/s, unpinned)",
                         "u_sl2_pipe", "u_sl_pipe", "rps", ge(1.7), extra)
    else:
        T.append(("workers = 2 ≥ 1.7x its own 1 reactor", "–", "not measured: workers not in this build"))
    ratio_target("fairness: hello p99 with 4 spinners ≤ 2x hello p99 alone", "s5_spin", "s5_alone", "p99", le(2.0))
    ratio_target("limits on vs off: ≤ 10% req/s cost, i.e. ≥ 0.90x (pinned)", "p_sl_lim", "p_sl", "rps", ge(0.9))
    ratio_target("(#19) metrics on vs off: ≤ 2% req/s cost, i.e. ≥ 0.98x (blocking hello, pinned)", "p_sl", "p_sl_nomet",
                 "rps", ge(0.98))
    ratio_target("limits on vs off: ≥ 0.90x (unpinned)", "u_sl_lim", "u_sl", "rps", ge(0.9))
    ratio_target("(#16) submit ≥ 0.5x blocking hello, same server, shipped config", "s4_submit", "s4_block",
                 "rps", ge(0.5))
    sub = results.get("s4_submit", [])
    xs = [r["e2e_rps"] / b["rps"] for r, b in zip(sub, results.get("s4_block", [])) if b["rps"]]
    T.append(("(#16) submitted and run (submit + drain) ≥ 0.33x blocking hello", fmt_ratio(xs),
              verdict(xs, ge(0.33))))
    ratio_target("(#16) blocking hello, shipped config (records on) ≥ 1.0x nginx-lua (pinned)", "s4_block", "p_ngx",
                 "rps", ge(1.0))
    ratio_target("(#16) records on ≥ 0.9x records off (hello, all limits, pinned)", "p_sl_rec", "p_sl_lim", "rps",
                 ge(0.9))
    steady = results.get("s9_steady", [])
    if steady:
        first = steady[0]["rps"]
        worst = min(r["rps"] for r in steady) / first
        T.append((f"(#16) submits steady over {STEADY_RUNS * STEADY_SECS} s: every {STEADY_SECS} s run ≥ 0.9x the first",
                  f"{worst:.2f}x at the worst, {steady[-1]['rps'] / first:.2f}x at the end",
                  "met" if worst >= 0.9 else "missed"))
        left = steady[-1]["backlog"]
        rate = med([r["rps"] for r in steady])
        T.append(("(#16) the runner keeps up: queued or running after 60 s of submits ≤ 1 s of submits",
                  f"{left:,} ({left / rate:.2f} s)", "met" if left <= rate else "missed"))
        errs = sum(r["errors"] for r in steady)
        if errs:
            T.append(("(#16) no submit refused during the 60 s", f"{errs} errors", "missed"))
    half = results.get("s9_half")
    if half:
        floor = f" (a blocking hello and /ping: {half['floor_p50']:.2f} ms)"
        T.append(("(#16) submit-to-result at half the max rate: p50 ≤ 1 ms", f"{half['p50']:.2f} ms{floor}",
                  "met" if half["p50"] <= 1 else "missed"))
        T.append(("(#16) the same, p99 ≤ 10 ms", f"{half['p99']:.2f} ms", "met" if half["p99"] <= 10 else "missed"))
    if results.get("s10_block_big"):
        ratio_target(f"(#16) {results['s10_stored']:,} stored records: blocking hello ≥ 0.9x an empty store",
                     "s10_block_big", "s10_block_empty", "rps", ge(0.9))
        ratio_target("(#16) the same, submits ≥ 0.9x", "s10_submit_big", "s10_submit_empty", "rps", ge(0.9))
    ratio_target("(#18) publish ≥ 0.5x of blocking hello (1 message a request, same server, shipped config, pinned)",
                 "s11_publish", "s11_block", "rps", ge(0.5))
    lat = results.get("s11_latency", [])
    if lat:
        xs = [r["p99"] for r in lat]
        T.append(("(#18) delivery p99 ≤ 20 ms at half rate",
                  f"{fmt_ms(xs)}; p50 {fmt_ms([r['p50'] for r in lat])}; at "
                  f"{fmt_num(med([r['load']['rps'] for r in lat]))} messages/s", verdict(xs, le(20))))
    if "rss_idle_kb" in results:
        for label, kb, limit_mb in [("idle RSS ≤ 10 MB", results["rss_idle_kb"], 10),
                                    ("RSS with 1000 warm actions ≤ 64 MB", results["rss_1000_kb"], 64)]:
            b = kb * 1024
            T.append((label, f"{b / 1e6:.1f} MB ({b / 2**20:.1f} MiB)", "met" if b <= limit_mb * 1e6 else "missed"))
    for name in ["hello_limits", "hello_defaults"]:
        c = results.get(f"crit_{name}")
        if c:
            T.append((f"in-process warm invocation ({name}) ≤ 3 µs median",
                      f"{c['median_ns'] / 1000:.2f} µs", "met" if c["median_ns"] <= 3000 else "missed"))
    out = ["| target (issue 5; #16, #18, #19 where marked) | figure: median [min–max] | verdict |", "| --- | --- | --- |"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in T]
    return "\n".join(out)


def report(results, meta):
    L = []
    w = L.append
    w(f"SL benchmark, {meta['date']}: {meta['rounds']} rounds x {meta['secs']:.0f} s per wrk run, "
      f"{CONNS} connections, {meta['cpus']} CPUs, {meta['elapsed']:.0f} s after the build.")
    if ONLY:
        w(f"Only {', '.join(sorted(ONLY))} (BENCH_ONLY).")
    w("Ratios are per round against the comparator of the same round: median [min–max] over the rounds.")
    w("CPU is % of one core during the run: server / load generator / everything else on the machine "
      "(other engineers' jobs, steal); busy is how busy each CPU was; µs/req is server CPU per request.")
    w(f"SL runs with Nulldb, record_blocking = false and warm_instances = {WARM} unless the row says otherwise.")
    w("")
    w("| scenario | req/s | req/s ratio | p50 ms | p99 ms | p99 ratio | CPU % srv / gen / other "
      "| busy % cpu0 / cpu1 | srv µs/req | vs |")
    w("| --- | ---: | --- | ---: | ---: | --- | --- | --- | ---: | --- |")
    w("| **1, 2, 6. pinned** (server CPU 0, wrk -t1 CPU 1) | | | | | | | | | |")
    for k in ["p_ngx", "p_static", "p_sl", "p_sl_nomet", "p_sl_lim", "p_sl_rec", "p_sl_echo", "p_sl_def"]:
        w(row(results, LABELS[k], k, "p_ngx" if k != "p_ngx" else None, "comparator" if k == "p_ngx" else ""))
    w(row(results, "SL hello vs nginx return 200", "p_sl", "p_static", "p_static"))
    w(row(results, "SL hello, all limits vs SL hello (limits cost)", "p_sl_lim", "p_sl", "p_sl"))
    w(row(results, "SL hello vs SL hello, metrics off (metrics cost)", "p_sl", "p_sl_nomet", "p_sl_nomet"))
    w(row(results, "SL recorded vs not recorded", "p_sl_rec", "p_sl_lim", "p_sl_lim"))
    w("| **1, 2, 7. unpinned** (wrk -t2, both CPUs shared) | | | | | | | | | |")
    for k in ["u_ngx", "u_static", "u_sl", "u_sl_lim"]:
        w(row(results, LABELS[k], k, "u_ngx" if k != "u_ngx" else None, "comparator" if k == "u_ngx" else ""))
    w(row(results, "SL hello vs nginx return 200", "u_sl", "u_static", "u_static"))
    w(row(results, "SL hello, all limits vs SL hello (limits cost)", "u_sl_lim", "u_sl", "u_sl"))
    if results.get("workers_available"):
        w(row(results, LABELS["u_ngx2"], "u_ngx2", "u_ngx", "u_ngx (nginx's own scaling)"))
        w(row(results, LABELS["u_sl2_lim"], "u_sl2_lim", "u_ngx2", "u_ngx2"))
        w(row(results, "SL workers=2 vs SL 1 reactor (scaling)", "u_sl2_lim", "u_sl_lim", "u_sl_lim"))
        w(row(results, LABELS["u_sl_pipe"] + f" x{PIPELINE}", "u_sl_pipe", None, "latency per batch"))
        w(row(results, LABELS["u_sl2_pipe"] + f" x{PIPELINE} (scaling)", "u_sl2_pipe", "u_sl_pipe",
              "u_sl_pipe; latency per batch"))
    else:
        w("| SL workers=2 | not available | | | | | | | | `workers` not in this build |")
    w("| **3. hey -n 10000 -c 100** (unpinned) | | | | | | | | | |")
    w(row(results, "nginx-lua", "s3_ngx", None, "comparator"))
    w(row(results, "SL hello, all limits", "s3_sl", "s3_ngx"))
    w("| **4. async, shipped config (SQLite, records on)** (pinned) | | | | | | | | | |")
    w(row(results, "blocking POST /actions/hello/block (wrk 2 s)", "s4_block", "p_ngx", "p_ngx"))
    w(row(results, "submit POST /actions/hello (wrk 2 s)", "s4_submit", "s4_block", "the blocking row"))
    sub = results.get("s4_submit", [])
    if sub:
        w(f"| submitted then run (submit + drain) | {fmt_num(med([r['e2e_rps'] for r in sub]))} | "
          f"{fmt_ratio([r['e2e_rps'] / n['rps'] for r, n in zip(sub, results['s4_block'])])} | | | | | | | "
          f"the blocking row; drain {med([r['drain_s'] for r in sub]):.1f} s |")
    w(row(results, "nginx-lua, sequential (1 client)", "seq_ngx", None, "comparator"))
    w(row(results, "submit-to-result, sequential", "s4_latency", "seq_ngx", "seq_ngx"))
    steady = results.get("s9_steady", [])
    if steady:
        w(f"| **9. submits for {STEADY_RUNS * STEADY_SECS} s, shipped config** (pinned, {STEADY_RUNS} back-to-back "
          f"wrk runs of {STEADY_SECS} s on one server) | | | | | | | | | |")
        for i, r in enumerate(steady):
            w(f"| submit, {i * STEADY_SECS}-{(i + 1) * STEADY_SECS} s | {fmt_num(r['rps'])} | "
              f"{r['rps'] / steady[0]['rps']:.2f}x | {r['p50']:.2f} | {r['p99']:.2f} | | | | | "
              f"the first run; {r['backlog']:,} queued or running after it"
              f"{'; ' + str(r['errors']) + ' errors' if r['errors'] else ''} |")
    half = results.get("s9_half")
    if half:
        w(f"| submit-to-result while {fmt_num(half['load_rps'])} submits/s run (half the median above) | "
          f"{half['n']} roundtrips | | {half['p50']:.2f} | {half['p99']:.2f} | | | | | "
          f"sequential client beside a paced wrk{'; ' + str(half['errors']) + ' errors' if half['errors'] else ''} |")
        w(f"| the same client's blocking hello + `/ping`, alternating with those | {half['n']} pairs | | "
          f"{half['floor_p50']:.2f} | {half['floor_p99']:.2f} | | | | | two requests that need no commit |")
    if results.get("s10_block_big"):
        w(f"| **10. {results['s10_stored']:,} stored records vs an empty store, shipped config** (pinned, "
          f"wrk 3 s; filled in {results['s10_fill_s']:.0f} s) | | | | | | | | | |")
        w(row(results, "blocking hello, empty store", "s10_block_empty", None, "comparator"))
        n = results["s10_stored"]
        w(row(results, f"blocking hello, {n:,} records", "s10_block_big", "s10_block_empty", "the empty store"))
        w(row(results, "submit, empty store", "s10_submit_empty", None, "comparator"))
        w(row(results, f"submit, {n:,} records", "s10_submit_big", "s10_submit_empty", "the empty store"))
    events_rows(results, w)
    w("| **5. fairness** (pinned, wrk 1 s) | | | | | | | | | |")
    w(row(results, "SL hello alone", "s5_alone", None, "comparator"))
    w(row(results, "SL hello while 4 actions spin", "s5_spin", "s5_alone", "s5_alone"))
    w("| **8. create** (unpinned) | | | | | | | | | |")
    w(row(results, "create (wrk -c16 2 s, unique names)", "s8_create", "u_ngx", "u_ngx (scale only)"))
    w(row(results, "create-to-first-result, sequential", "s8_latency", "seq_ngx", "seq_ngx"))
    w("")
    w("| resource | value | target |")
    w("| --- | ---: | --- |")
    if "rss_idle_kb" in results:
        w(f"| slserver idle RSS | {results['rss_idle_kb'] / 1024:.1f} MiB | ≤ 10 MB |")
        w(f"| slserver RSS, 1000 actions created and warm | {results['rss_1000_kb'] / 1024:.1f} MiB | ≤ 64 MB |")
    if "ngx_rss_kb" in results:
        w(f"| nginx-lua 1 worker RSS (master + worker, after the runs) | {results['ngx_rss_kb'] / 1024:.1f} MiB | – |")
    w(f"| slserver binary | {meta['binary'] / 1e6:.1f} MB ({meta['binary_stripped'] / 1e6:.1f} MB stripped) | – |")
    for name in ["hello_defaults", "hello_limits", "instance_and_first_invoke", "compile"]:
        c = results.get(f"crit_{name}")
        if c:
            target = "≤ 3 µs median" if name.startswith("hello") else "–"
            ratio = ""
            if name.startswith("hello") and results.get("luajit_inproc_ns"):
                lj = med(results["luajit_inproc_ns"])
                ratio = f" ({c['median_ns'] / lj:.1f}x LuaJIT+cjson's {lj:.0f} ns)"
            w(f"| in-process {name} (criterion median, 95% CI) | {c['median_ns'] / 1000:.2f} µs "
              f"[{c['lo_ns'] / 1000:.2f}–{c['hi_ns'] / 1000:.2f}]{ratio} | {target} |")
    w("")
    w(targets(results))
    if ONLY:
        return "\n".join(only_rows("\n".join(L).split("\n")))
    return "\n".join(L)


def only_rows(lines):
    """With BENCH_ONLY: the table without the rows and targets of the
    scenarios that did not run, and without the sections they leave empty."""
    kept = [x for x in lines if "| not available |" not in x and "| not measured" not in x]
    out = []
    for i, x in enumerate(kept):
        nxt = kept[i + 1] if i + 1 < len(kept) else ""
        if x.startswith("| **") and (not nxt.startswith("| ") or nxt.startswith("| **")):
            continue
        out.append(x)
    return out


def fmt_ms(xs):
    return f"{med(xs):.2f} ms [{min(xs):.2f}–{max(xs):.2f}]"


def events_rows(results, w):
    """Scenario 11's section of the table."""
    if not any(results.get(k) for k in ["s11_block", "s11_publish", "s11_batch", "s11_latency"]):
        return
    w(f"| **11. events (#18), shipped config (SQLite, records on)** (pinned, wrk {SECS:.0f} s; topics of "
      f"{EVENT_PARTITIONS} partitions) | | | | | | | | | |")
    w(row(results, "blocking POST /actions/hello/block, same server", "s11_block", None, "comparator"))
    w(row(results, "publish POST /topics/bench?key=K (1 message a request, a new key each)", "s11_publish",
          "s11_block", "the blocking row"))
    batch = results.get("s11_batch", [])
    if batch:
        w(row(results, f"publish POST /topics/bench/batch ({EVENT_BATCH} messages a request; messages/s)",
              "s11_batch", "s11_block", f"the blocking row (messages/s against req/s); "
              f"{fmt_num(med([r['batches'] for r in batch]))} batches/s; latencies per batch, µs per message",
              p99_ratio=False))
    lat = results.get("s11_latency", [])
    if lat:
        load = [r["load"] for r in lat]
        pct, busy, per_req = cpu_cells(load)
        errs = sum(r["errors"] for r in load)
        w(f"| paced publishes of the latency run ({EVENT_SECS:.0f} s, wrk -c{med([r['conns'] for r in lat]):.0f} "
          f"on a Poisson schedule, 1 message a request) | {fmt_num(med([r['rps'] for r in load]))} | | "
          f"{med([r['p50'] for r in load]):.2f} | {med([r['p99'] for r in load]):.2f} | | {pct} | {busy} | {per_req} | "
          f"aimed at {fmt_num(med([r['target_rps'] for r in lat]))}/s, half the row above"
          f"{'; ' + str(errs) + ' errors' if errs else ''}; µs per message published and delivered |")
        missing = sum(max(0, r["answered"] - r["n"]) for r in lat)
        dead = sum(r["dead"] for r in lat)
        extra = (f"; {missing} answered but not delivered" if missing else "") + (f"; {dead} dead" if dead else "")
        w(f"| publish-to-delivery at that rate (subscription batch_size {EVENT_SUB_BATCH}, max_wait_ms 0) | "
          f"{fmt_num(med([r['n'] for r in lat]))} messages | | {med([r['p50'] for r in lat]):.2f} | "
          f"{med([r['p99'] for r in lat]):.2f} | | | | | client send to the `published` of the subscriber's "
          f"`seen` message; of which send to stored {med([r['stored_p50'] for r in lat]):.2f} / "
          f"{med([r['stored_p99'] for r in lat]):.2f}, stored to delivered {med([r['delivered_p50'] for r in lat]):.2f} / "
          f"{med([r['delivered_p99'] for r in lat]):.2f} (p50 / p99); {fmt_num(med([r['n'] / r['batches'] for r in lat]), 1)} "
          f"messages a batch; max {med([r['max'] for r in lat]):.0f} ms; drained {med([r['drain_s'] for r in lat]):.1f} s "
          f"after{extra} |")


# ---------------------------------------------------------------- main


def main():
    t_start = time.monotonic()
    results = {}
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "rounds": ROUNDS, "secs": SECS,
            "cpus": os.cpu_count()}
    meta["binary"] = os.path.getsize(SLSERVER)
    stripped = os.path.join(WORK, "slserver.stripped")
    subprocess.run(["strip", "-o", stripped, SLSERVER], check=True)
    meta["binary_stripped"] = os.path.getsize(stripped)

    if wanted("criterion"):
        log("criterion (in-process) and the LuaJIT comparator")
        criterion(results)

    log("starting servers")
    sl = SL("sl", plugin=True)
    # The same without metrics (Server { metrics = false }): what counting costs.
    sl_nomet = SL("sl-nometrics", plugin=True, metrics=False)
    sl_rec = SL("sl-rec", store="sqlite", record_blocking=True)
    sl_def = SL("sl-default", warm=None)
    # The shipped configuration: SQLite, blocking runs recorded, warm_instances = 4.
    sl_async = SL("sl-async", store="sqlite", record_blocking=True, warm=None)
    sl_create = SL("sl-create")
    sl2 = SL("sl-w2", workers=2)
    ngx = Nginx("nginx1", 1)
    ngx2 = Nginx("nginx2", 2)
    hello = open(os.path.join(BENCH, "hello.lua")).read()
    for s in [sl, sl_nomet, sl_rec, sl_async, sl2, sl_def]:
        s.create("hello", hello)
        s.create("hello_limits", hello, **TIGHT)
    sl.create("echo", open(os.path.join(BENCH, "echo.lua")).read())
    sl.create("spin", open(os.path.join(BENCH, "spin.lua")).read(), timeout=SPIN_TIMEOUT_MS,
              instructions=10_000_000_000)
    for t, path in [(sl, "/actions/hello/block"), (sl, "/actions/hello_limits/block"), (sl_rec, "/actions/hello_limits/block"),
                    (sl_def, "/actions/hello_limits/block"),
                    (sl2, "/actions/hello_limits/block"), (ngx, "/hello"), (ngx2, "/hello")]:
        check(t, path)
    check(sl, "/actions/echo/block", b'{"name":"x"}')
    check(ngx, "/static", method="GET")
    check(ngx2, "/static", method="GET")
    # workers = 2 really started two reactors: two listening sockets (SO_REUSEPORT)
    # or, at least, more threads than a single reactor's server.
    sl2_threads = len(os.listdir(f"/proc/{sl2.proc.pid}/task"))
    sl1_threads = len(os.listdir(f"/proc/{sl_async.proc.pid}/task"))
    sl2_ok = sl2_threads > sl1_threads
    results["workers_available"] = sl2_ok
    if not sl2_ok:
        log(f"workers = 2 seems not implemented ({sl2_threads} threads vs {sl1_threads}): scenario 7 not available")

    D = SECS
    for rnd in range(ROUNDS):
        log(f"round {rnd + 1}/{ROUNDS}")
        pinned = [
            ("p_ngx", lambda: wrk(ngx, "/hello", D, True)),
            ("p_static", lambda: wrk(ngx, "/static", D, True, script="get.lua")),
            ("p_sl", lambda: wrk(sl, "/actions/hello/block", D, True)),
            ("p_sl_nomet", lambda: wrk(sl_nomet, "/actions/hello/block", D, True)),
            ("p_sl_lim", lambda: wrk(sl, "/actions/hello_limits/block", D, True)),
            ("p_sl_rec", lambda: wrk(sl_rec, "/actions/hello_limits/block", D, True)),
            ("p_sl_echo", lambda: wrk(sl, "/actions/echo/block", D, True)),
            ("p_sl_def", lambda: wrk(sl_def, "/actions/hello_limits/block", D, True)),
        ]
        unpinned = [
            ("u_ngx", lambda: wrk(ngx, "/hello", D, False, threads=2)),
            ("u_static", lambda: wrk(ngx, "/static", D, False, threads=2, script="get.lua")),
            ("u_sl", lambda: wrk(sl, "/actions/hello/block", D, False, threads=2)),
            ("u_sl_lim", lambda: wrk(sl, "/actions/hello_limits/block", D, False, threads=2)),
        ]
        if sl2_ok:
            unpinned += [
                ("u_sl2_lim", lambda: wrk(sl2, "/actions/hello_limits/block", D, False, threads=2)),
                ("u_ngx2", lambda: wrk(ngx2, "/hello", D, False, threads=2)),
                # Pipelined: wrk spends a fraction of its CPU per request, so
                # more of the machine is left to the reactors.
                ("u_sl_pipe", lambda: wrk(sl, "/actions/hello_limits/block", D, False, threads=2,
                                          script="pipeline.lua", env={"WRK_PIPELINE": str(PIPELINE)})),
                ("u_sl2_pipe", lambda: wrk(sl2, "/actions/hello_limits/block", D, False, threads=2,
                                           script="pipeline.lua", env={"WRK_PIPELINE": str(PIPELINE)})),
            ]
        # Alternate the targets: each round starts at another place in the list.
        for group in [pinned if wanted("pinned") else [], unpinned if wanted("unpinned") else []]:
            if not group:
                continue
            k = rnd % len(group)
            for key, f in group[k:] + group[:k]:
                results.setdefault(key, []).append(f())
                time.sleep(0.3)
        def seed_benchmark():
            runs = [("s3_ngx", ngx, "/hello"), ("s3_sl", sl, "/actions/hello_limits/block")]
            for key, target, path in (runs if rnd % 2 == 0 else runs[::-1]):
                results.setdefault(key, []).append(hey(target, path))
                time.sleep(0.3)

        seq = [("hey", seed_benchmark),
               ("async", lambda: async_round(sl_async, results)),
               ("async", lambda: nginx_sequential(ngx, results, "seq_ngx")),
               ("fairness", lambda: fairness_round(sl, results, rnd)),
               ("create", lambda: create_round(sl_create, rnd, results)),
               ("events", lambda: events_round(rnd, results))]
        seq = [(name, f) for name, f in seq if wanted(name)]
        k = rnd % len(seq) if seq else 0
        for _, f in seq[k:] + seq[:k]:
            f()
            time.sleep(0.3)
        for p in STARTED:
            if not p.alive():
                raise RuntimeError(f"{p.name} died: {p.stderr_tail()}")

    if wanted("steady"):
        log("scenario 9: submits over 60 s, latency at half their rate")
        steady = SL("sl-steady", store="sqlite", record_blocking=True, warm=None)
        steady.create("hello", hello)
        check(steady, "/actions/hello/block")
        steady_round(steady, results)
        steady.proc.stop()
        STARTED.remove(steady.proc)
    if wanted("store"):
        log(f"scenario 10: {BIG_STORE:,} stored records against an empty store")
        big_store(results, hello)
    if wanted("memory"):
        results["ngx_rss_kb"] = sum(rss_kb(p) for p in ngx.pids())
    if wanted("perf"):
        log("perf profiles" if PERF else "no perf: profiles skipped")
        profiles(sl, ngx, results)
    stop_all()
    if wanted("memory"):
        log("memory")
        memory(results)
    meta["elapsed"] = time.monotonic() - t_start
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    table = report(results, meta)
    print(table)
    out = os.environ.get("BENCH_OUT")
    if out:
        with open(out, "w") as f:
            f.write(table + "\n")
    log(f"raw figures: {os.path.join(WORK, 'results.json')}")
    for path in results.get("profiles", []):
        log(f"profile: {path}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    finally:
        stop_all()
