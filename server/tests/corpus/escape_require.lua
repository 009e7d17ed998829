-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: the prelude sets require (and module) to nil
-- message: global 'require'
function main()
  local io = require('io')
  return io.read('a')
end
