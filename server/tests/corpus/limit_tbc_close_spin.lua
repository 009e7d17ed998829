-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: a to-be-closed variable's __close runs under the hook when the block ends, so it cannot outlive the timeout
function main()
  local x <close> = setmetatable({}, {__close = function() while true do end end})
  return 'closed'
end
