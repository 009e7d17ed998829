-- expect: instructions
-- limits: timeout=10000 maxmem=16384 instructions=100000
-- why: matcher steps are charged to the instruction budget, so with a long timeout a budget below what one call may take anyway (STALL_LIMIT's worth of steps) ends the crafted pattern
function main()
  return string.find(string.rep('a', 5000), '.-.-.-.-.-.-.-.-.-.-b')
end
