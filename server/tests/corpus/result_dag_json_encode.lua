-- expect: memory|timeout
-- limits: timeout=200 maxmem=1024 instructions=0
-- why: json.encode of a shared-reference DAG expands exponentially in Rust; it must be bounded by the limits like any other work of the invocation
function main()
  local t = {1}
  for i = 1, 22 do t = {t, t} end
  return #json.encode(t)
end
