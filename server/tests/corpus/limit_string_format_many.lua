-- expect: memory
-- limits: timeout=2000 maxmem=0 instructions=0
-- atmax: memory
-- why: string.format with many long arguments grew its buffer, one block that is not a string, to maxmem before the result was refused (a second of copying at 1 GiB); the sandbox adds up the lengths first and refuses a result longer than 8 MiB at once
function main()
  local a = 'x'
  for i = 1, 22 do a = a .. a end
  return #string.format('%s%s%s%s%s%s%s%s', a, a, a, a, a, a, a, a)
end
