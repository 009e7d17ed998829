-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: collectgarbage is removed (it could stop the collector or force full collections outside the limits)
-- message: global 'collectgarbage'
function main()
  collectgarbage('stop')
  return collectgarbage('count')
end
