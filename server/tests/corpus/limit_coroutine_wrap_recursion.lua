-- expect: runtime
-- limits: timeout=2000 maxmem=8192 instructions=0
-- why: nested resumes are counted as C calls; Lua stops them at its C-stack limit with an ordinary error
-- message: C stack overflow
local function nest(n)
  return coroutine.wrap(function() return nest(n + 1)() end)
end

function main()
  return nest(1)()
end
