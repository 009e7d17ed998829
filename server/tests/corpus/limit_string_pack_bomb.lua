-- expect: memory
-- limits: timeout=2000 maxmem=8192 instructions=0
-- why: string.pack pads a fixed-size string field byte by byte into a Lua buffer that grows through the metered allocator
function main()
  return #string.pack('c1073741824', 'a')
end
