-- wrk script for bench/run, scenario 11 (#18): publish.lua's requests
-- (one message a request, a new key each) at a set rate, and each
-- message's payload carries the time it is sent: {"name":"x","t":<Unix
-- ms, to the µs>}, read from the clock the server stamps `published`
-- with (CLOCK_REALTIME).
--
-- The rate: each wrk thread sends on a schedule of its own, a Poisson
-- process of $WRK_RATE requests a second (divided among the threads),
-- whatever the answers take: after each answer, the connection waits for
-- the thread's next free time on that schedule (a schedule fallen behind
-- starts again from now, without a burst to catch up). That needs enough
-- connections: more than the rate times the answer time. Without
-- WRK_RATE each connection waits a random time of mean $WRK_DELAY_MS
-- after each answer, as paced.lua does, and the rate falls as answers
-- slow down. (wrk waits whole milliseconds; the schedule does not drift
-- from that, as it counts from its own last time, not from the send.)
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "publish.lua")
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } sl_bench_timespec;
int clock_gettime(int clock, sl_bench_timespec *ts);
]]
local ts = ffi.new("sl_bench_timespec")
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "4")

math.randomseed(os.time())

-- Unix time in ms (CLOCK_REALTIME is 0 on Linux).
local function now_ms()
  ffi.C.clock_gettime(0, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("WRK_RATE") or "0")
local threads = tonumber(os.getenv("WRK_THREADS") or "1")
local due = nil -- this thread's next time on the schedule (Unix ms)

function delay()
  local gap = -math.log(1 - math.random())
  if rate <= 0 then
    return gap * pause
  end
  local now = now_ms()
  due = math.max(due or now, now) + gap * 1000 * threads / rate
  return due - now
end

-- wrk calls request() when the connection can take the request, just
-- before writing it.
function request()
  local payload = string.format('{"name":"x","t":%.3f}', now_ms())
  return wrk.format("POST", wrk.path .. "?key=" .. next_key(), headers, payload)
end
