-- expect: runtime
-- limits: timeout=1000 maxmem=65536 instructions=0
-- why: table.unpack returns at most 65,536 values (the most one library call may return), so select('#', table.unpack(...)) over a huge range is an ordinary error, raised before any item is read
-- message: too many results to unpack
function main()
  return select('#', table.unpack({}, 1, 100000000))
end
