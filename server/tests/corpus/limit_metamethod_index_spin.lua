-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: metamethods are Lua code under the same hook, and a metamethod called from Lua code can be preempted
function main()
  local t = setmetatable({}, {__index = function() while true do end end})
  while true do pcall(function() return t.x end) end
end
