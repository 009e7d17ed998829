-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: ipairs reads through __index from C; a spinning __index is stopped by the timeout, and the server must keep serving others meanwhile
function main()
  local proxy = setmetatable({}, {__index = function() while true do end end})
  for _ in ipairs(proxy) do end
  return 'done'
end
