-- wrk script for bench/run, scenario 8: creates actions with unique names
-- (WRK_PREFIX, the thread and a counter) from the base64 source in
-- WRK_CODE, and prints one JSON line with the figures bench/bench.py reads.
local code = os.getenv("WRK_CODE")
local prefix = os.getenv("WRK_PREFIX") or "c"
local threads = 0
local n = 0
id = 0 -- set per thread by setup()

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function request()
  n = n + 1
  local body = string.format('{"name":"%s_%d_%d","code":"%s"}', prefix, id, n, code)
  return wrk.format("POST", "/actions", { ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
