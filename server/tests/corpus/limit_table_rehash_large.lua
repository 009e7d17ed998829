-- expect: memory|timeout
-- limits: timeout=2000 maxmem=0 instructions=0
-- atmax: memory|timeout
-- why: inserting a key into a full table rehashes it in one instruction (every entry counted and moved to a part twice as big), and next() skips a run of empty array slots in one call: both take time in proportion to the table, so maxmem bounds them (some 15 ms at the default 64 MiB), and max_maxmem (64 MiB by default) bounds the longest; at 1 GiB a rehash took 470 ms
function main()
  local t = {}
  for i = 1, 1 << 21 do t[i] = true end
  for i = 1, 1 << 21 do t[i] = nil end
  for i = 1, 200 do local k = next(t) end
  t = nil
  local h, i = {}, 0
  while true do
    i = i + 1
    h[i + 0.5] = true
  end
end
