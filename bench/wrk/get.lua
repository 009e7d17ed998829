-- wrk script for bench/run: GETs the URL and prints the summary of
-- summary.lua.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "summary.lua")
