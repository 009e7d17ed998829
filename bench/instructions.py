#!/usr/bin/env python3
"""Instructions per blocking hello request, counted by callgrind.

Usage: bench/instructions.py [--records] [--no-metrics] [SLSERVER] (default: target/release/slserver)
Env:   SL_INSTR_REQUESTS (3000), SL_INSTR_KEEP=1 keeps the callgrind output.

--records measures the shipped path of a blocking run instead: SQLite, every
run recorded (record_blocking = true). The server writes the records of one
loop turn in one transaction, so with one request a turn this counts a
transaction per record: the most a record can cost.

--no-metrics turns the server's metrics off (Server { metrics = false }):
the difference from the default is what counting costs a request.

Starts slserver under `valgrind --tool=callgrind` with instrumentation off,
creates `hello_limits` (bench/hello.lua with every limit set), sends 200
warm-up requests on one keep-alive connection, switches instrumentation on,
sends N more one after the other, dumps the counts and prints the user-space
instructions per request. Unlike the wrk figures, the count does not depend
on what else the machine runs (the same binary gives the same figure within
a fraction of a percent), so it shows the effect of a change to the request
path on a busy machine. It counts SL's own work, not the kernel's, and one
request per turn of the event loop (wrk's 64 connections share a turn).
"""

import base64
import glob
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the suite's settings: TIGHT limits, BODY)


def main():
    args = sys.argv[1:]
    records = "--records" in args
    metrics = "--no-metrics" not in args
    args = [a for a in args if a not in ("--records", "--no-metrics")]
    binary = args[0] if args else os.path.join(HERE, "..", "target", "release", "slserver")
    if not os.path.exists(binary):
        sys.exit(f"no slserver at {binary}: build it with `cargo build --release -p sl-server`")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (Debian package valgrind)")
    n = int(os.environ.get("SL_INSTR_REQUESTS", "3000"))
    work = tempfile.mkdtemp(prefix="slinstr-")
    cfg = os.path.join(work, "config.lua")
    with open(cfg, "w") as f:
        if not metrics:
            f.write("Server { metrics = false }\n")
        if records:
            f.write('Logger { level = "warn" }\nInvocations { record_blocking = true }\nSqlite { path = "sl.db" }\n'
                    "Limits { warm_instances = 128 }\n")
        else:
            f.write('Logger { level = "warn" }\nInvocations { record_blocking = false }\nNulldb {}\n'
                    "Limits { warm_instances = 128 }\n")
    port = bench.free_port()
    out = os.path.join(work, "callgrind.out")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         binary, "--config", cfg, "--listen", f"127.0.0.1:{port}"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "valgrind.log"), "w"))
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        api = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        with open(os.path.join(HERE, "hello.lua")) as f:
            code = base64.b64encode(f.read().encode()).decode()
        api.request("POST", "/actions", json.dumps({"name": "hello_limits", "code": code, **bench.TIGHT}),
                    {"Content-Type": "application/json"})
        r = api.getresponse()
        r.read()
        if r.status != 201:
            sys.exit(f"create hello_limits: {r.status}")
        body = bench.BODY.encode()
        req = (b"POST /actions/hello_limits/block HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        s = socket.create_connection(("127.0.0.1", port))

        def one():
            s.sendall(req)
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    sys.exit("slserver closed the connection")
                buf += chunk
                head_end = buf.find(b"\r\n\r\n")
                m = re.search(rb"Content-Length: (\d+)\r\n", buf, re.I)
                if head_end >= 0 and m and len(buf) >= head_end + 4 + int(m.group(1)):
                    if not buf.startswith(b"HTTP/1.1 200") or not buf.endswith(bench.EXPECTED):
                        sys.exit(f"unexpected answer: {buf[:300]!r}")
                    return

        for _ in range(200):
            one()
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(n):
            one()
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dumps = []
        for _ in range(100):
            dumps = [f for f in glob.glob(out + ".*") if re.search(r"\.\d+$", f)]
            if dumps:
                break
            time.sleep(0.1)
        total = None
        for _ in range(50):
            with open(dumps[0]) as f:
                total = next((int(line.split()[1]) for line in f if line.startswith("summary:")), None)
            if total is not None:
                break
            time.sleep(0.1)
        if total is None:
            sys.exit("no callgrind summary")
        what = ", records on (SQLite)" if records else ""
        print(f"{total / n:,.0f} instructions per request ({n} requests, {os.path.basename(binary)}{what})")
        if os.environ.get("SL_INSTR_KEEP") == "1":
            print(f"callgrind output: {dumps[0]} (callgrind_annotate --inclusive=yes {dumps[0]})")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(bench.WORK, ignore_errors=True)  # made by importing bench
        if os.environ.get("SL_INSTR_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
