-- expect: timeout
-- limits: timeout=150 maxmem=16384 instructions=0
-- why: the sandbox's pattern functions are the Rust matcher with a step budget; a call that would run past the deadline is cut off with the timeout (the timeout is short because one matcher call cannot be preempted: that stall is pattern_find_long_timeout's subject)
function main()
  return string.find(string.rep('a', 5000), '.-.-.-.-.-.-.-.-.-.-b')
end
