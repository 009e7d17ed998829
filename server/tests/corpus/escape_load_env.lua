-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: there are no hidden globals to reach: a chunk loaded with a custom environment, with a rebound _ENV or with the default one sees the same sandboxed globals, and none of the removed functions
-- result: {"found":"","probes":11}
function main()
  local probes = {
    'io', 'os.execute', 'os.getenv', 'os.exit', 'debug', 'package', 'dofile', 'loadfile',
    'collectgarbage', 'string.dump', 'warn',
  }
  local found = {}
  local env = setmetatable({}, {__index = _G})
  for _, p in ipairs(probes) do
    local a = load('return ' .. p, 'p', 't', env)()
    local b = load('local _ENV = ... return ' .. p, 'p', 't')(_G)
    local c = load('return ' .. p)()
    local d = load('return _ENV.' .. p, 'p', 't', _G._G)()
    if a ~= nil or b ~= nil or c ~= nil or d ~= nil then found[#found + 1] = p end
  end
  return {found = table.concat(found, ','), probes = #probes}
end
