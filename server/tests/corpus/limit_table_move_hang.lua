-- expect: timeout|instructions
-- limits: timeout=200 maxmem=4096 instructions=0
-- why: table.move over a huge range of nils allocates nothing (nil values are not stored) and runs no VM instruction; it must still be cut off by a limit
function main()
  table.move({}, 1, math.maxinteger, 1)
  return 'moved'
end
