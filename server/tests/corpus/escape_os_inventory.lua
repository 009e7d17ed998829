-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: every dangerous os function (execute, exit, getenv, remove, rename, tmpname, setlocale) is absent; only the four time functions remain
-- result: {"keys":"clock,date,difftime,time","exit":"nil","getenv":"nil","remove":"nil","rename":"nil","tmpname":"nil","setlocale":"nil"}
function main()
  local keys = {}
  for k in pairs(os) do keys[#keys + 1] = k end
  table.sort(keys)
  return {
    keys = table.concat(keys, ','), exit = type(os.exit), getenv = type(os.getenv), remove = type(os.remove),
    rename = type(os.rename), tmpname = type(os.tmpname), setlocale = type(os.setlocale),
  }
end
