-- wrk script for bench/run: POSTs $WRK_BODY (JSON) and prints the summary of
-- summary.lua.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "summary.lua")
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or '{"name":"x"}'
wrk.headers["Content-Type"] = "application/json"
