-- expect: memory
-- limits: timeout=5000 maxmem=2048 instructions=0
-- why: every utf8.char result is a Lua string counted by the allocator
function main()
  local t, i = {}, 0
  while true do
    i = i + 1
    t[i] = utf8.char(i % 0x10FFFF, 0x10FFFF, 0x7FF)
  end
end
