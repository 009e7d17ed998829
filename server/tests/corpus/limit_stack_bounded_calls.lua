-- expect: timeout|memory
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout|memory
-- why: calls that take or return as many values as one library call may return (65,536: string.byte, string.char, table.pack, table.unpack of a plain table, select, math.max, utf8.codepoint, a table constructor, a vararg call, a coroutine's transfer) work in C for a few milliseconds each at most; the preemption timer keeps a loop of them from holding the server longer
function main()
  local a = ('a'):rep(65536)
  local function count(...) return select('#', ...) end
  local echo = coroutine.wrap(function(...)
    local args = table.pack(...)
    while true do args = table.pack(coroutine.yield(table.unpack(args, 1, args.n))) end
  end)
  while true do
    local t = table.pack(a:byte(1, -1))
    local s = string.char(table.unpack(t, 1, t.n))
    local m = math.max(select(2, table.unpack(t, 1, t.n)))
    local n = select('#', utf8.codepoint(s, 1, -1))
    local u = {a:byte(1, -1)}
    local c = count(table.unpack(u))
    local e = select('#', echo(table.unpack(u)))
  end
end
