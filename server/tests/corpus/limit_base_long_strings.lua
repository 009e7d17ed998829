-- expect: timeout|memory
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout|memory
-- why: functions that read a whole string in one call, bounded by the longest string there may be (8 MiB, a few ms each): rawequal, rawget and rawset with a new long key (hashed), tonumber of 8 MiB of digits (and the same string coerced by arithmetic), error with a long message, utf8.offset over a run of 8 MiB of continuation bytes, string.sub, print (which keeps 64 KiB)
function main()
  local a = 'x'
  for i = 1, 23 do a = a .. a end
  local b = a:sub(1, -2) .. 'y'
  local d = ('1'):rep(8 * 1024 * 1024 - 1)
  local c = ('\x80'):rep(8 * 1024 * 1024 - 1)
  local t = {}
  while true do
    local e = rawequal(a, b)
    local k = b:sub(2) .. '!'
    rawset(t, k, true)
    local g = rawget(t, k)
    t = {}
    local n = tonumber(d)
    local m = d + 0
    pcall(error, b)
    local o = utf8.offset('a' .. c, 2)
    print(b)
  end
end
