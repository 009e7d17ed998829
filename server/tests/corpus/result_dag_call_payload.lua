-- expect: memory|timeout
-- limits: timeout=200 maxmem=1024 instructions=0
-- why: the payload of call() is converted to JSON before the plugin is even looked up, so the same DAG expansion is reachable on a server without plugins; it must be bounded by the limits
function main()
  local t = {1}
  for i = 1, 22 do t = {t, t} end
  local ok, err = pcall(call, 'no-such-plugin', 'x', t)
  return tostring(err)
end
