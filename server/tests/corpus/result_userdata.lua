-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: the only userdata reachable from Lua is json.null, which becomes null
-- result: [null, 1]
function main()
  return {json.null, 1}
end
