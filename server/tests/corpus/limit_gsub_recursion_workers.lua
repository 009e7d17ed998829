-- expect: runtime|memory
-- limits: timeout=2000 maxmem=8192 instructions=0
-- why: recursion through gsub and its Lua callback ends in an ordinary Lua error (stack overflow, or the memory limit as the Lua stack grows) on every worker thread, never in a native stack overflow that aborts the process
-- server: workers=2
-- runs: 10
local function f(s)
  return (string.gsub(s, '.', f))
end

function main()
  return f('aa')
end
