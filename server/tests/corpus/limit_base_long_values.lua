-- expect: timeout|memory
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout|memory
-- why: calls that work through one long value in one C or Rust call, each bounded by the longest string there may be (Limits.max_string, 8 MiB): tostring of a table whose __name is nearly 8 MiB long, json.encode and json.decode of an 8 MiB string, http.response of a 6 MiB body that is not UTF-8 (8 MiB of base64), the utf8.codes iterator skipping 8 MiB of continuation bytes, string.format('%s') of an 8 MiB string, a table constructor of a million values; the preemption timer keeps a loop of them from holding the server longer than one of them
function main()
  local a = 'x'
  for i = 1, 23 do a = a .. a end
  local c = ('\x80'):rep(8 * 1024 * 1024 - 1)
  local named = setmetatable({}, {__name = a:sub(64)})
  local iter = utf8.codes('')
  local m = ('a'):rep(999000)
  while true do
    local s = tostring(named)
    local j = json.encode(a:sub(3))
    local d = json.decode(j)
    local r = http.response(200, c:sub(1, 6 * 1024 * 1024 - 3))
    local n = iter(c, 0)
    local f = string.format('%s', d)
    local t = {m:byte(1, -1)}
  end
end
