-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: tostring calls __tostring with a yieldable call, so a spinning __tostring is paused every slice like any Lua code and stopped by the timeout; the server keeps serving others meanwhile
function main()
  local evil = setmetatable({}, {__tostring = function() while true do end end})
  while true do pcall(tostring, evil) end
end
