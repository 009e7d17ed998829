-- expect: timeout
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout
-- why: Lua's C sort of 4096 references to two long strings with a common prefix makes some 50,000 comparisons of 4 MiB each in one call; the sandbox sorts in C only when the strings are short enough for the whole sort to be
function main()
  local a = 'x'
  for i = 1, 22 do a = a .. a end
  local b = a:sub(1, -2) .. 'y'
  local t = {}
  for i = 1, 4096 do t[i] = (i % 2 == 0) and a or b end
  table.sort(t)
  return 'sorted'
end
