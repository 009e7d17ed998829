-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: package (and with it loadlib and C modules) is not loaded
-- message: global 'package'
function main()
  local system = package.loadlib('libc.so.6', 'system')
  return system('id')
end
