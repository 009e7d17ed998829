-- expect: memory
-- limits: timeout=2000 maxmem=0 instructions=0
-- atmax: memory
-- why: table.concat of a table holding one 4 MiB string 200 times grew its buffer toward maxmem (800 MiB at 1 GiB) before the result was refused; the sandbox measures the items first
function main()
  local a = 'x'
  for i = 1, 22 do a = a .. a end
  local t = {}
  for i = 1, 200 do t[i] = a end
  return #table.concat(t)
end
