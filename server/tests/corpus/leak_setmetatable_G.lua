-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: a metatable on _G traps only this action's instance (globals persist in warm instances of the same version, as documented); the innocent action's _G has no metatable and its undefined globals stay nil
-- result: "done"
function main()
  setmetatable(_G, {
    __index = function(_, k) return 'trapped:' .. tostring(k) end,
    __newindex = function(t, k) rawset(t, k, 'trapped') end,
  })
  leak = 'x'
  return 'done'
end
