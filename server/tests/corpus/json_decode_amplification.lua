-- expect: memory|timeout
-- limits: timeout=3000 maxmem=10240 instructions=0
-- why: a 3 MB JSON array of 1.5 million small numbers needs far more than maxmem as Lua values; decoding must fail with memory (or, in a slow debug build, be cut off as a timeout because one decode cannot be paused for longer than the stall limit) without the server first building a much larger tree outside the limit (checked through its RSS) or stalling other requests
function main()
  local s = '[' .. string.rep('1,', 1500000) .. '1]'
  local t = json.decode(s)
  return #t
end
