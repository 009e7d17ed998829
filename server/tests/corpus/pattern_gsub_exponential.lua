-- expect: timeout
-- limits: timeout=150 maxmem=16384 instructions=0
-- why: gsub matching draws on the step budget too (the timeout is short because one matcher call cannot be preempted: that stall is pattern_find_long_timeout's subject)
function main()
  return string.gsub(string.rep('a', 3000), '.-.-.-.-.-.-b', 'x')
end
