-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: the comparator is Lua code under the hook; table.sort calls it from C where the hook cannot yield, which must not stop the server from serving others meanwhile
function main()
  while true do
    pcall(table.sort, {3, 2, 1, 5, 4}, function() while true do end end)
  end
end
