-- expect: timeout|instructions
-- limits: timeout=200 maxmem=4096 instructions=0
-- why: table.sort trusts __len (up to 2^31 items) and a C comparator (math.type) runs no VM instruction: billions of comparisons in C must still be cut off by a limit
function main()
  local t = setmetatable({}, {__len = function() return (1 << 31) - 2 end})
  table.sort(t, math.type)
  return 'sorted'
end
