-- expect: runtime
-- limits: timeout=2000 maxmem=8192 instructions=0
-- why: deeply nested JSON is refused by the parser's recursion limit with an ordinary error
-- message: invalid JSON
function main()
  return json.decode(string.rep('[', 100000))
end
