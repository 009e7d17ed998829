-- expect: memory|timeout
-- limits: timeout=2000 maxmem=0 instructions=0
-- atmax: memory|timeout
-- why: string.gsub builds its result in Rust, one call that cannot be paused; copying the replacement is charged to its step budget (16 bytes a step), which ends the call at the stall limit (a timeout; in a debug build, before 8 MiB), and the result is refused as soon as it passes 8 MiB, the longest string there may be (memory), not copied on toward maxmem
function main()
  local a = 'x'
  for i = 1, 22 do a = a .. a end
  return #string.gsub(('y'):rep(1000), 'y', a)
end
