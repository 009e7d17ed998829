-- expect: timeout
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout
-- why: == of two 8 MiB strings that differ in their last byte is one VM instruction and one 8 MiB memcmp; a loop of them held the server for a second and more between two firings of the count hook (every 1000 instructions); the preemption timer makes the hook fire after the instruction in progress
function main()
  local a = 'x'
  for i = 1, 23 do a = a .. a end
  local b = a:sub(1, -2) .. 'y'
  local n = 0
  while true do
    if a == b then n = n + 1 end
  end
end
