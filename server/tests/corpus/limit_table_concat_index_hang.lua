-- expect: timeout|instructions
-- limits: timeout=200 maxmem=4096 instructions=0
-- why: table.concat over a huge range whose items come from a C function in __index (table.concat itself returns '' for an empty table) allocates nothing and runs no VM instruction, so only a step budget on the library function can stop it
function main()
  local t = setmetatable({}, {__index = table.concat})
  return #table.concat(t, '', 1, math.maxinteger)
end
