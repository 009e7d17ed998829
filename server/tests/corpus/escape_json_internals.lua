-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: json holds only Lua wrappers around the Rust functions; without debug their upvalues are unreachable, json has no metatable, and json.null is a plain light userdata
-- result: {"keys":"array,decode,encode,null","meta":"nil","nullmeta":"nil","null":"userdata","enc":false,"dec":false,"wrapped":"function"}
function main()
  local keys = {}
  for k in pairs(json) do keys[#keys + 1] = k end
  table.sort(keys)
  return {
    keys = table.concat(keys, ','),
    meta = tostring(getmetatable(json)),
    nullmeta = tostring(getmetatable(json.null)),
    null = type(json.null),
    enc = (pcall(json.encode, json)),
    dec = (pcall(json.decode, '{"a":')),
    wrapped = type(json.encode),
  }
end
