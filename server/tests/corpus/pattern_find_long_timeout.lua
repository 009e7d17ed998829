-- expect: timeout|instructions
-- limits: timeout=3000 maxmem=16384 instructions=0
-- why: one crafted find draws steps 65,536 at a time, the clock read at each grant, so it is cut off by the timeout, the stall bound or the instruction budget; but the matcher cannot be preempted, and the server must keep serving others meanwhile
function main()
  return string.find(string.rep('a', 5000), '.-.-.-.-.-.-.-.-.-.-b')
end
