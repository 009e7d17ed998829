-- expect: timeout|instructions
-- limits: timeout=3000 maxmem=16384 instructions=0
-- why: one crafted find draws steps 65,536 at a time, the clock read at each grant: it is paused at the end of each time slice (the server serves others meanwhile) and cut off by the timeout or the instruction budget
function main()
  return string.find(string.rep('a', 5000), '.-.-.-.-.-.-.-.-.-.-b')
end
