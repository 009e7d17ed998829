-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: the globals and library fields are exactly the documented allow-list (base without dofile, loadfile, collectgarbage, warn; string without dump; table, math, utf8, coroutine; os with four functions; json; http.response; call, invoke and SL's own require of library actions; publish, ack and retry for events); anything new here must be reviewed
-- result: "_G _VERSION ack assert call coroutine.close coroutine.create coroutine.isyieldable coroutine.resume coroutine.running coroutine.status coroutine.wrap coroutine.yield error getmetatable http.response invoke ipairs json.array json.decode json.encode json.null load main math.abs math.acos math.asin math.atan math.atan2 math.ceil math.cos math.cosh math.deg math.exp math.floor math.fmod math.frexp math.huge math.ldexp math.log math.log10 math.max math.maxinteger math.min math.mininteger math.modf math.pi math.pow math.rad math.random math.randomseed math.sin math.sinh math.sqrt math.tan math.tanh math.tointeger math.type math.ult next os.clock os.date os.difftime os.time pairs pcall print publish rawequal rawget rawlen rawset require retry select setmetatable string.byte string.char string.find string.format string.gmatch string.gsub string.len string.lower string.match string.pack string.packsize string.rep string.reverse string.sub string.unpack string.upper table.concat table.insert table.move table.pack table.remove table.sort table.unpack tonumber tostring type utf8.char utf8.charpattern utf8.codepoint utf8.codes utf8.len utf8.offset xpcall"
function main()
  local out = {}
  for k, v in pairs(_G) do
    if type(v) == 'table' and k ~= '_G' then
      for k2 in pairs(v) do out[#out + 1] = k .. '.' .. k2 end
    else
      out[#out + 1] = k
    end
  end
  table.sort(out)
  return table.concat(out, ' ')
end
