-- expect: timeout|memory
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout|memory
-- why: calls that work through one long value in one C call, each bounded by the longest string there may be (Limits.max_string, 8 MiB): tostring of a table whose __name is nearly 8 MiB long, string.format('%s') of an 8 MiB string, the utf8.codes iterator skipping 8 MiB of continuation bytes; the preemption timer keeps a loop of them from holding the server longer than one of them
function main()
  local a = 'x'
  for i = 1, 23 do a = a .. a end
  local c = ('\x80'):rep(8 * 1024 * 1024 - 1)
  local named = setmetatable({}, {__name = a:sub(64)})
  local iter = utf8.codes('')
  while true do
    local s = tostring(named)
    local f = string.format('%s', a)
    local n = iter(c, 0)
  end
end
