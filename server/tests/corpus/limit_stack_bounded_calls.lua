-- expect: timeout|memory
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout|memory
-- why: calls that take or return as many values as Lua's stack holds (about a million: string.byte, string.char, table.pack, table.unpack of a plain table, select, math.max, utf8.codepoint, a table constructor) work in C for up to some 15 ms each; that is their bound, and the preemption timer keeps a loop of them from holding the server longer
function main()
  local a = ('a'):rep(999000)
  while true do
    local t = table.pack(a:byte(1, -1))
    local s = string.char(table.unpack(t, 1, t.n))
    local m = math.max(select(2, table.unpack(t, 1, t.n)))
    local n = select('#', utf8.codepoint(s, 1, -1))
    local u = {a:byte(1, -1)}
  end
end
