-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: every action version has its own Lua states, so replacing globals and library functions (and setting metatables on them) changes this action's instance only; the innocent action sees none of it
-- result: "done"
function main()
  leak = 'set by an attacker'
  type = function() return 'pwned' end
  tostring = function() return 'pwned' end
  getmetatable = function() return {} end
  pcall = function(f, ...) return true, f(...) end
  string.rep = function() return 'pwned' end
  string.find = function() return 1 end
  table.concat = function() return 'pwned' end
  math.max = function() return -1 end
  json.encode = function() return 'pwned' end
  json.decode = function() return {} end
  setmetatable(string, {__index = function() return 'pwned' end})
  setmetatable(math, {__newindex = function() end})
  io = {open = function() return 'pwned' end}
  collectgarbage = function() return 0 end
  return 'done'
end
