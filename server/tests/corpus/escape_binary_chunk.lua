-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: the load wrapper forces mode 't' whatever mode is asked for and whether the chunk is a string or a reader, so a binary chunk (which could break the VM) is always refused
-- result: {"b":false,"default":false,"bt":false,"reader":false,"env":false,"all_say_binary":true}
local header = "\27Lua\84\0\25\147\r\n\26\n\4\8\8\120\86\0\0\0\0\0\0\0\0\0\0\0\0\0\40\119\64\1"

function main()
  local results, msgs = {}, {}
  local function try(key, ...)
    local f, err = load(...)
    results[key] = f ~= nil
    msgs[#msgs + 1] = tostring(err)
  end
  try('b', header, 'x', 'b')
  try('default', header)
  try('bt', header, 'x', 'bt')
  local sent = false
  try('reader', function()
    if sent then return nil end
    sent = true
    return header
  end, 'x', 'b')
  try('env', header, 'x', 'b', {})
  local all = true
  for _, m in ipairs(msgs) do
    if not m:find('binary', 1, true) then all = false end
  end
  results.all_say_binary = all
  return results
end
