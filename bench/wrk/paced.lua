-- wrk script for bench/run: POSTs $WRK_BODY (JSON), each connection
-- waiting $WRK_DELAY_MS ms before each request (a paced load of about
-- connections * 1000 / WRK_DELAY_MS requests a second), and prints the
-- summary of summary.lua.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "summary.lua")
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or '{"name":"x"}'
wrk.headers["Content-Type"] = "application/json"
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "4")

function delay()
  return pause
end
