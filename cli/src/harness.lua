
-- slcli test harness: appended to a *_test.lua file (after its last line,
-- so that the file's line numbers stay right). `main{list = true}` returns
-- the sorted names of the global functions whose name starts with "test";
-- `main{case = NAME}` runs one under pcall and returns {ok = true} or
-- {ok = false, message = ...}. The assertions are globals, defined when
-- the chunk runs, before any test function is called.
do
  local type, pairs, tostring, error, pcall = type, pairs, tostring, error, pcall
  local sort, concat, format, find = table.sort, table.concat, string.format, string.find

  local function show(v, depth, seen)
    if type(v) == 'string' then
      return format('%q', v)
    elseif type(v) ~= 'table' then
      return tostring(v)
    elseif seen[v] then
      return '<cycle>'
    elseif depth > 6 then
      return '{...}'
    end
    seen[v] = true
    local keys = {}
    for k in pairs(v) do
      keys[#keys + 1] = k
    end
    sort(keys, function(a, b)
      local ta, tb = type(a), type(b)
      if ta ~= tb then
        return ta < tb
      elseif ta == 'number' or ta == 'string' then
        return a < b
      end
      return tostring(a) < tostring(b)
    end)
    local parts, n = {}, 0
    for _, k in ipairs(keys) do
      n = n + 1
      if n > 50 then
        parts[#parts + 1] = '...'
        break
      end
      local shown_v = show(v[k], depth + 1, seen)
      if k == n and type(k) == 'number' then
        parts[#parts + 1] = shown_v
      elseif type(k) == 'string' and find(k, '^[%a_][%w_]*$') then
        parts[#parts + 1] = k .. ' = ' .. shown_v
      else
        parts[#parts + 1] = '[' .. show(k, depth + 1, seen) .. '] = ' .. shown_v
      end
    end
    seen[v] = nil
    return '{' .. concat(parts, ', ') .. '}'
  end

  local function equal(a, b, seen)
    if a == b then
      return true
    end
    if type(a) ~= 'table' or type(b) ~= 'table' then
      return false
    end
    if seen[a] == b then
      return true
    end
    seen[a] = b
    for k, v in pairs(a) do
      if not equal(v, b[k], seen) then
        return false
      end
    end
    for k in pairs(b) do
      if a[k] == nil then
        return false
      end
    end
    return true
  end

  local function prefix(msg)
    if msg == nil then
      return ''
    end
    return tostring(msg) .. ': '
  end

  -- Fails unless `actual` equals `expected` (tables compared deeply).
  function assert_eq(actual, expected, msg)
    if not equal(actual, expected, {}) then
      error(prefix(msg) .. 'expected ' .. show(expected, 0, {}) .. ', got ' .. show(actual, 0, {}), 2)
    end
  end

  -- Fails if `actual` equals `unexpected` (tables compared deeply).
  function assert_ne(actual, unexpected, msg)
    if equal(actual, unexpected, {}) then
      error(prefix(msg) .. 'expected a value other than ' .. show(unexpected, 0, {}), 2)
    end
  end

  -- Fails unless `fn()` raises an error (whose message contains the Lua
  -- pattern `pattern`, if given); returns the error.
  function assert_error(fn, pattern, msg)
    local ok, err = pcall(fn)
    if ok then
      error(prefix(msg) .. 'expected an error, but the function returned', 2)
    end
    if pattern ~= nil and not find(tostring(err), pattern) then
      error(prefix(msg) .. 'expected an error matching ' .. show(pattern, 0, {}) .. ', got ' .. show(err, 0, {}), 2)
    end
    return err
  end

  local env = _ENV

  local function test_names()
    local names = {}
    for k, v in pairs(env) do
      if type(k) == 'string' and k:sub(1, 4) == 'test' and type(v) == 'function' then
        names[#names + 1] = k
      end
    end
    sort(names)
    return names
  end

  function main(args)
    if args.list then
      return test_names()
    end
    local f = env[args.case]
    if type(f) ~= 'function' then
      return { ok = false, message = 'no test function named ' .. tostring(args.case) }
    end
    local ok, err = pcall(f)
    if ok then
      return { ok = true }
    end
    if type(err) ~= 'string' then
      err = show(err, 0, {})
    end
    return { ok = false, message = err }
  end
end
