-- expect: timeout
-- limits: timeout=2000 maxmem=0 instructions=0
-- atmax: timeout
-- why: the collector's atomic step traverses again every table written to since it was marked, in one step that cannot be paused; 48 tables of 65,536 integers written to all the time make it work through 48 MiB (tens of ms), so a heap past Limits.offload_heap takes its slices off the event loop
function main()
  local ts = {}
  for i = 1, 48 do
    local t = {}
    for j = 1, 65536 do t[j] = j end
    ts[i] = t
  end
  while true do
    for i = 1, 48 do ts[i][1] = {} end
  end
end
