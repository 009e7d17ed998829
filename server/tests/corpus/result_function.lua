-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: functions have no JSON form; the error names the place
-- message: $.f: a function has no JSON form
function main()
  return {f = print}
end
