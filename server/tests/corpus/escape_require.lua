-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: require reaches only library actions in the store (Lua code run in this sandbox), never Lua's package loaders or C modules
-- message: no library action named 'io'
function main()
  local io = require('io')
  return io.read('a')
end
