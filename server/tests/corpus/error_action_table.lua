-- expect: action
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: nil plus a table message is an action error whose message is the table as JSON; no metamethod of the table runs
-- message: {"code":7}
function main()
  return nil, setmetatable({code = 7}, {__tostring = function() while true do end end, __index = function() while true do end end})
end
