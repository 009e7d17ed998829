-- expect: runtime
-- limits: timeout=3000 maxmem=65536 instructions=0
-- why: with room in maxmem, recursion stops at Lua's own stack limit (about a million slots) with an ordinary error, and growing and unwinding that stack must not stall the server
-- message: stack overflow
function main()
  local function f(n) return 1 + f(n + 1) end
  return f(1)
end
