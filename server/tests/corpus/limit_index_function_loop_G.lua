-- expect: runtime
-- limits: timeout=2000 maxmem=8192 instructions=0
-- why: an __index function on _G that reads the missing global again recurses through metamethod calls until Lua's C-call limit
-- message: stack overflow
function main()
  setmetatable(_G, {__index = function(t, k) return t[k] end})
  return undefined_global
end
