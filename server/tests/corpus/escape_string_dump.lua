-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: string.dump is removed, so no bytecode can be produced to tamper with and load back
-- message: field 'dump'
function main()
  return string.dump(main)
end
