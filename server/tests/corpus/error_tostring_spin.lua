-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: the server describes an error object without calling its __tostring, so a spinning __tostring never runs (it would run outside the invocation's limits)
-- message: error object is a table value
function main()
  error(setmetatable({}, {__tostring = function() while true do end end}))
end
