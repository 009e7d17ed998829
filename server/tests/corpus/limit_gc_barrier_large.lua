-- expect: timeout|instructions
-- limits: timeout=2000 maxmem=0 instructions=0
-- atmax: timeout|instructions
-- why: the collector's atomic step traverses again, without a pause, every table written to since it was marked: 48 MiB of tables, each written to in a loop, make that step as long as a heap within max_maxmem allows (about 100 MiB of them took some 45 ms, so max_maxmem is 64 MiB by default)
function main()
  local ts = {}
  for j = 1, 48 do
    local t = {}
    for i = 1, 1 << 16 do t[i] = i end
    ts[j] = t
  end
  while true do
    for j = 1, #ts do ts[j][1] = {} end
  end
end
