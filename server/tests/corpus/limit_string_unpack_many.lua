-- expect: timeout|memory
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout|memory
-- why: string.unpack with a format of a million options makes a million values (strings here) in one C call (some 50 ms), and string.packsize and utf8.char of a million characters (each made a string) are as long; formats of more than 4 KiB and more than 4096 characters go by pieces of that size
function main()
  local f = ('c0'):rep(999000)
  local codes = {}
  for i = 1, 999000 do codes[i] = 0x4e00 end
  while true do
    local n = select('#', string.unpack(f, 'x'))
    local size = string.packsize(('i4'):rep(999000))
    local s = utf8.char(table.unpack(codes))
  end
end
