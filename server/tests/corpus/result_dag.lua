-- expect: memory|timeout
-- limits: timeout=200 maxmem=1024 instructions=0
-- why: a result of 23 tables where each holds the next one twice is a DAG of depth 22 (within the nesting limit) that expands to 4 million leaves; converting it to JSON must stay within the limits (timeout, or maxmem for the output) instead of expanding in Rust for seconds and hundreds of MB
function main()
  local t = {1}
  for i = 1, 22 do t = {t, t} end
  return t
end
