-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: the setmetatable wrapper refuses metatables with __gc, because finalizers run with hooks off
-- message: finalizers (__gc) are not available
function main()
  setmetatable({}, {__gc = function() while true do end end})
  return 'registered'
end
