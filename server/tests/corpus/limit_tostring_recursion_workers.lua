-- expect: runtime
-- limits: timeout=2000 maxmem=8192 instructions=0
-- why: recursion through tostring (C) and a __tostring metamethod nests C calls; it must stop at Lua's C-call limit with an ordinary error on every worker thread, never with a native stack overflow that aborts the process
-- message: stack overflow
-- server: workers=2
-- runs: 6
local mt = {}
mt.__tostring = function()
  return tostring(setmetatable({}, mt))
end

function main()
  return tostring(setmetatable({}, mt))
end
