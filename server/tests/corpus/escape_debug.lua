-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: debug is not loaded, so the registry and the upvalues of the prelude are out of reach
-- message: global 'debug'
function main()
  local reg = debug.getregistry()
  return tostring(reg)
end
