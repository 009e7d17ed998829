-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: the metatable of decoded arrays is reachable and can be changed, but it lives in this action's state only; the innocent action's arrays are untouched
-- result: "pwned"
function main()
  local mt = getmetatable(json.decode('[]'))
  if type(mt) ~= 'table' then return 'pwned' end
  mt.__index = function() return 'pwned' end
  return json.decode('[1]')[5]
end
