-- expect: timeout|memory
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout|memory
-- why: each .. here copies 8 MiB into a new string in one instruction (the garbage collector frees them as the loop goes); the preemption timer bounds how long such instructions run in a row
function main()
  local a = 'x'
  for i = 1, 22 do a = a .. a end
  while true do
    local c = a .. a
  end
end
