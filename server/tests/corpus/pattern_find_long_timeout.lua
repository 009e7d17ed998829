-- expect: timeout|instructions
-- limits: timeout=3000 maxmem=16384 instructions=0
-- why: one crafted find gets a step allowance sized to the whole time left (10,000 steps per ms in debug builds, 100,000 in release), so it is cut off by the timeout or the instruction budget; but the matcher cannot be preempted, and the server must keep serving others meanwhile
function main()
  return string.find(string.rep('a', 5000), '.-.-.-.-.-.-.-.-.-.-b')
end
