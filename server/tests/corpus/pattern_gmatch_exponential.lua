-- expect: timeout
-- limits: timeout=150 maxmem=16384 instructions=0
-- why: every gmatch step draws on the same step budget as find and match (the timeout is short because one matcher call cannot be preempted: that stall is pattern_find_long_timeout's subject)
function main()
  for w in string.gmatch(string.rep('a', 4000), '.-.-.-.-.-.-b') do end
  return 'done'
end
