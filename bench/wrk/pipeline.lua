-- wrk script for bench/run (scenario 7, pipelined): post.lua's requests and
-- summary, but each write carries $WRK_PIPELINE POSTs (16 by default), so
-- that the load generator spends a fraction of the CPU per request it
-- spends one request at a time. wrk counts every response; its latency
-- figures are per batch, not per request.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "post.lua")

local depth = tonumber(os.getenv("WRK_PIPELINE") or "16")
local batch

function init(args)
  batch = string.rep(wrk.format(), depth)
end

function request()
  return batch
end
