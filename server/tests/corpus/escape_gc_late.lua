-- expect: ok
-- limits: timeout=2000 maxmem=8192 instructions=0
-- why: Lua 5.4 marks an object for finalization only when setmetatable sees __gc, so adding __gc afterwards, or offering it through __index of the metatable, registers nothing
-- result: {"fired":false}
function main()
  local mt = {}
  local a = setmetatable({}, mt)
  mt.__gc = function() fired = true end
  local b = setmetatable({}, setmetatable({}, {__index = {__gc = function() fired = true end}}))
  a, b = nil, nil
  for i = 1, 50000 do local garbage = {i} end
  return {fired = fired == true}
end
