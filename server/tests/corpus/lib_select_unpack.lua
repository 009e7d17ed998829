-- expect: runtime
-- limits: timeout=1000 maxmem=65536 instructions=0
-- why: table.unpack checks the Lua stack before pushing (at most about a million values), so select('#', table.unpack(...)) over a huge range is an ordinary error (with maxmem below the 16 MB that Lua's attempt to grow the stack to its limit takes, the refused allocation makes it a memory abort instead)
-- message: too many results to unpack
function main()
  return select('#', table.unpack({}, 1, 100000000))
end
