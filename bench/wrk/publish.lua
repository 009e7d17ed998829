-- wrk script for bench/run, scenario 11 (#18): publishes $WRK_BODY (JSON)
-- to the topic of the URL (POST /topics/NAME?key=K), one message a
-- request, each with a new key ("k<thread>-<n>", so that the messages
-- spread over the topic's partitions as many clients' would), and prints
-- the summary of summary.lua.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "summary.lua")
body = os.getenv("WRK_BODY") or '{"name":"x"}'
headers = { ["Content-Type"] = "application/json" }
local threads = 0
id = 0 -- set per thread by setup()
n = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

-- The next key of this thread.
function next_key()
  n = n + 1
  return "k" .. id .. "-" .. n
end

function request()
  return wrk.format("POST", wrk.path .. "?key=" .. next_key(), headers, body)
end
