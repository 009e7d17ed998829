-- wrk script for bench/run: POSTs $WRK_BODY (JSON), each connection
-- waiting a random time of mean $WRK_DELAY_MS ms before each request (a
-- paced load of about connections * 1000 / WRK_DELAY_MS requests a second),
-- and prints the summary of summary.lua.
--
-- The waits are drawn from an exponential distribution, so that the
-- requests of many connections arrive as independent clients' would. With
-- one fixed wait, connections answered together (a group commit answers a
-- batch at once) send again together, and the load turns into bursts of
-- the last batch's size.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "summary.lua")
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or '{"name":"x"}'
wrk.headers["Content-Type"] = "application/json"
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "4")

math.randomseed(os.time())

function delay()
  return -pause * math.log(1 - math.random())
end
