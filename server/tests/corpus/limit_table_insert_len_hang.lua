-- expect: timeout|instructions
-- limits: timeout=200 maxmem=4096 instructions=0
-- why: table.insert at position 1 shifts #t elements, and __len may claim any length; shifting nils allocates nothing and runs no VM instruction, so it must still be cut off by a limit
function main()
  local t = setmetatable({}, {__len = function() return math.maxinteger - 1 end})
  table.insert(t, 1, true)
  return 'inserted'
end
