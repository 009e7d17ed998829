-- expect: ok
-- limits: timeout=5000 maxmem=8192 instructions=0
-- why: print output is kept to 64 KiB per invocation; the rest is dropped with a marker instead of growing without bound
-- result: "done"
function main()
  local line = string.rep('x', 1000)
  for i = 1, 10000 do print(line) end
  return 'done'
end
