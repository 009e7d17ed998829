-- expect: memory|timeout
-- limits: timeout=200 maxmem=1024 instructions=0
-- why: the arguments of invoke() go through the same JSON conversion as a call() payload, before the callee is even looked up: the DAG expansion is counted against maxmem and the clock as it is built
function main()
  local t = {1}
  for i = 1, 22 do t = {t, t} end
  local ok, err = pcall(invoke, 'no-such-action', {dag = t})
  return tostring(err)
end
