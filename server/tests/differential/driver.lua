-- The differential driver: the same text runs in Debian's lua5.4 (which
-- writes the report to stdout) and as an action on slserver (whose main
-- returns it). tests/differential.rs prepends `CASES = {...}`, a list
-- of {name, code}, and compares the two reports line by line.
--
-- Each case's code is a chunk named "=case", run with pcall; its results
-- (or its error message, position included) become one line of text. The driver itself uses only
-- plain loops, string.byte, string.sub, string.format('%d'/'%.17g') and
-- table.concat, so that what it reports depends on the functions under
-- test only where a case calls them.

local byte, sub, format, concat, mtype = string.byte, string.sub, string.format, table.concat, math.type
local load, pcall, select, tostring, type = load, pcall, select, tostring, type

-- Bytes outside printable ASCII (and the backslash and quote) as \ddd.
local function esc(s)
  local out, n = {}, 0
  for i = 1, #s do
    local b = byte(s, i)
    n = n + 1
    if b < 32 or b > 126 or b == 92 or b == 34 then
      out[n] = '\\' .. b
    else
      out[n] = sub(s, i, i)
    end
  end
  return concat(out)
end

-- A long string shows as its length, its first and last 60 bytes, and a
-- checksum of all its bytes.
local function show_string(s)
  if #s <= 160 then
    return '"' .. esc(s) .. '"'
  end
  local sum = 0
  for i = 1, #s do
    sum = (sum * 31 + byte(s, i)) % 1000000007
  end
  return format('<%d bytes "%s"..."%s" sum %d>', #s, esc(sub(s, 1, 60)), esc(sub(s, -60)), sum)
end

local function show(v)
  local t = type(v)
  if t == 'number' then
    if mtype(v) == 'integer' then
      return format('%d', v)
    end
    if v ~= v then
      return 'nan'
    end
    return format('%.17g', v) .. 'f'
  elseif t == 'string' then
    return show_string(v)
  elseif t == 'nil' or t == 'boolean' then
    return tostring(v)
  end
  return t
end

local function show_all(...)
  local parts = {}
  for i = 1, select('#', ...) do
    parts[i] = show((select(i, ...)))
  end
  return concat(parts, ', ')
end

-- An error message as it is, with the "case:N: " position Lua adds when
-- a library function called at line N of the case raises it: the sandbox
-- must name the same line.
local function message(msg)
  if type(msg) ~= 'string' then
    return show(msg)
  end
  return show_string(msg)
end

local function report(ok, ...)
  if ok then
    return show_all(...)
  end
  return 'error ' .. message((...))
end

local function run_case(case)
  local f, err = load(case[2], '=case', 't')
  if not f then
    return 'compile ' .. message(err)
  end
  return report(pcall(f))
end

-- The report: one line per case, "name: result". `only`, if given, runs
-- that case alone.
local function run(only)
  local lines = {}
  for i, case in ipairs(CASES) do
    if only == nil or only == i then
      lines[#lines + 1] = case[1] .. ': ' .. run_case(case)
    end
  end
  return concat(lines, '\n') .. '\n'
end

function main(args)
  return run(args and args.only)
end

if io then
  io.write(run(tonumber(arg and arg[1])))
end
