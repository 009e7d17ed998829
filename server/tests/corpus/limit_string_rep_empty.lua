-- expect: ok|timeout|instructions
-- limits: timeout=200 maxmem=4096 instructions=0
-- why: string.rep of an empty string allocates nothing, so maxmem does not bound it; it must either return '' at once or be cut off by a limit. Lua's C string.rep still loops n times, without the hook ever firing
-- result: 0
function main()
  return #string.rep('', math.maxinteger)
end
