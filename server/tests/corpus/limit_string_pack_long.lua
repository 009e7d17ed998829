-- expect: memory
-- limits: timeout=2000 maxmem=0 instructions=0
-- atmax: memory
-- why: string.pack of many long strings grew its buffer toward maxmem before the result was refused; the sandbox bounds the result from the format and the strings first
function main()
  local a = 'x'
  for i = 1, 22 do a = a .. a end
  return #string.pack(('z'):rep(40), a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a)
end
