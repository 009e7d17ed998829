-- wrk script for bench/run (scenario 7, pipelined): each write carries
-- $WRK_PIPELINE POSTs of $WRK_BODY (JSON), so that the load generator spends
-- a fraction of the CPU per request it spends one request at a time.
-- wrk counts every response; latency figures are per batch, not per request.
local depth = tonumber(os.getenv("WRK_PIPELINE") or "16")
local body = os.getenv("WRK_BODY") or '{"name":"x"}'
local batch

function init(args)
  local one = wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
  batch = string.rep(one, depth)
end

function request()
  return batch
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
