-- expect: timeout|memory
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout|memory
-- why: json.encode and json.decode of an 8 MiB string, and http.response of a 6 MiB body that is not UTF-8 (8 MiB of base64), each work through the string in one Rust call, bounded by the longest string there may be (Limits.max_string); the preemption timer keeps a loop of them from holding the server longer than one of them
function main()
  local a = 'x'
  for i = 1, 23 do a = a .. a end
  local d = a:sub(3)
  local c = ('\x80'):rep(6 * 1024 * 1024 - 3)
  while true do
    local j = json.encode(d)
    local e = json.decode(j)
    local r = http.response(200, c)
  end
end
