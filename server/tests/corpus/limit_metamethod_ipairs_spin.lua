-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: the iterator of ipairs reads through __index with a yieldable call, so a spinning __index is paused every slice like any Lua code and stopped by the timeout; the server keeps serving others meanwhile
function main()
  local proxy = setmetatable({}, {__index = function() while true do end end})
  for _ in ipairs(proxy) do end
  return 'done'
end
