-- expect: memory|timeout
-- limits: timeout=300 maxmem=4096 instructions=0
-- why: catching stack overflows in a loop does not outlive the limits: the memory hit or the timeout ends it
function main()
  local function f() return f() + 1 end
  while true do pcall(f) end
end
