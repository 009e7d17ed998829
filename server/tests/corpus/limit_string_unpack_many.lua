-- expect: timeout|memory|instructions
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout|memory|instructions
-- why: string.unpack with a format of many options makes one value an option (strings here) in one C call, and string.packsize and utf8.char of many characters (each made a string) loop as long; formats of more than 4 KiB and more than 4096 characters go by pieces of that size, and string.unpack returns at most 65,536 values (the most one call may return)
function main()
  local f = ('c0'):rep(65535)
  local codes = {}
  for i = 1, 65536 do codes[i] = 0x4e00 end
  while true do
    local n = select('#', string.unpack(f, 'x'))
    local size = string.packsize(('i4'):rep(999000))
    local s = utf8.char(table.unpack(codes))
  end
end
