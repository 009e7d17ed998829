-- expect: memory
-- limits: timeout=2000 maxmem=8192 instructions=0
-- why: Lua stack growth is allocated through the metered allocator, so unbounded recursion hits maxmem first when maxmem is small
function main()
  local function f(n) return 1 + f(n + 1) end
  return f(1)
end
