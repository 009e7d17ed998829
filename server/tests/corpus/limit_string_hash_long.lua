-- expect: timeout|memory
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout|memory
-- why: a new long string used as a table key is hashed byte by byte (all 8 MiB, in one instruction); the keys (8 MiB each) are kept, so maxmem may end it first
function main()
  local a = 'x'
  for i = 1, 23 do a = a .. a end
  local t, i = {}, 0
  while true do
    i = i + 1
    t[a:sub(8) .. i] = true
  end
end
