-- expect: runtime
-- limits: timeout=2000 maxmem=8192 instructions=0
-- why: an __index table chain that loops on _G is cut by Lua after 2000 steps
-- message: chain too long
function main()
  setmetatable(_G, {__index = _G})
  return undefined_global
end
