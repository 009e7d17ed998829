-- expect: memory
-- limits: timeout=2000 maxmem=4096 instructions=0
-- why: table.concat builds its result in a Lua buffer that grows through the metered allocator
function main()
  local big = string.rep('x', 512 * 1024)
  local t = {}
  for i = 1, 256 do t[i] = big end
  return #table.concat(t)
end
