-- expect: timeout
-- limits: timeout=150 maxmem=16384 instructions=0
-- why: a cut-off pattern call aborts the invocation; catching it with pcall and trying again does not help (the timeout is short because one matcher call cannot be preempted: that stall is pattern_find_long_timeout's subject)
function main()
  while true do
    pcall(string.match, string.rep('a', 3000), '(.-)(.-)(.-)(.-)(.-)x')
  end
end
