-- wrk script for bench/run, scenario 8: creates actions with unique names
-- (WRK_PREFIX, the thread and a counter) from the base64 source in
-- WRK_CODE, and prints the summary of summary.lua.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "summary.lua")
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
