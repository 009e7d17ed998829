-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: table.sort of tables compares them with __lt; Lua's C sort would call it where it cannot yield, so the sandbox sorts them with its Lua version, where a spinning __lt is paused every slice and stopped by the timeout
function main()
  local mt = {__lt = function() while true do end end}
  local t = {setmetatable({}, mt), setmetatable({}, mt), setmetatable({}, mt)}
  table.sort(t)
  return 'sorted'
end
