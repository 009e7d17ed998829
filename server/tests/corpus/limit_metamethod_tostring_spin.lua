-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: __tostring runs under the hook and is stopped by the timeout; it is called from C (tostring), where the hook cannot yield, which must not stop the server from serving others meanwhile
function main()
  local evil = setmetatable({}, {__tostring = function() while true do end end})
  while true do pcall(tostring, evil) end
end
