-- The sandbox prelude: runs once in every new Lua state, before user code.
-- It receives trusted Rust functions as arguments and closes over the raw
-- library functions it wraps, so user code can never reach them.
local take_preempt, PREEMPT, guard, emit, encode, decode, null, ERR, CALL, stall, wrap_handler, chunk_reader, guarded, INVOKE, REQUIRE, b64, array, limits, refuse, span_len, find_span, has_specials = ...

local raw_pcall, raw_xpcall, raw_load, raw_setmetatable = pcall, xpcall, load, setmetatable
local raw_resume, raw_yield, isyieldable, co_create = coroutine.resume, coroutine.yield, coroutine.isyieldable, coroutine.create
local pack, unpack, concat, select, tostring, type, rawget, rawequal, error =
  table.pack, table.unpack, table.concat, select, tostring, type, rawget, rawequal, error
local min, str_sub, to_number, os_time = math.min, string.sub, tonumber, os.time

-- No C call works through more than PIECE bytes of a string or LOOP table
-- slots at a time, and no string is longer than MAX_STRING bytes (see
-- docs/sandbox-limits.md): code here that builds strings from pieces
-- counts their length and calls refuse() (a memory error that cannot be
-- caught, as the allocator's refusal of a longer string) before it would
-- pass that.
local PIECE, LOOP, MAX_STRING = limits.piece, limits.loop, limits.max_string

-- parts[1..n] (strings, MAX_STRING bytes in all with the separators)
-- joined with sep, by C calls of at most LOOP parts. Overwrites parts.
local function join(parts, sep, n)
  while n > LOOP do
    local m = 0
    for k = 1, n, LOOP do
      m = m + 1
      parts[m] = concat(parts, sep, k, min(k + LOOP - 1, n))
    end
    n = m
  end
  return concat(parts, sep, 1, n)
end

-- After a limit is hit, `guard` raises again wherever an error was caught.
local function finish(...)
  guard()
  return ...
end

function pcall(...)
  return finish(raw_pcall(...))
end

-- The message handler is wrapped in a Rust function: once a limit was
-- hit it hands the error on without running any Lua (which the hook would
-- abort again, making Lua call the handler again, 200 levels deep).
function xpcall(f, handler, ...)
  return finish(raw_xpcall(f, wrap_handler(handler), ...))
end

-- The hook pauses the running coroutine to share the CPU. When that was an
-- inner coroutine (or a pause passed up from deeper down, the value
-- PREEMPT), pass the pause up to the invocation's thread, then continue the
-- inner one where it stopped.
--
-- A plugin call made inside a coroutine (the values CALL, plugin, action,
-- payload) is passed up the same way, and its result passed back down.
local function resume(co, ...)
  local r = pack(raw_resume(co, ...))
  while true do
    if take_preempt(co) or (r.n == 2 and r[1] == true and r[2] == PREEMPT) then
      if isyieldable() then
        raw_yield(PREEMPT)
      else
        -- Inside a callback that cannot yield: the coroutine would be
        -- resumed at once, forever. Bound it like any code that cannot be
        -- paused.
        stall()
      end
      r = pack(raw_resume(co))
    elseif r[1] == true and r[2] == CALL then
      local res
      if isyieldable() then
        res = pack(raw_yield(unpack(r, 2, r.n)))
      else
        res = pack(false, 'call() cannot wait here (inside a metamethod or a library callback)')
      end
      r = pack(raw_resume(co, unpack(res, 1, res.n)))
    else
      break
    end
  end
  guard()
  return unpack(r, 1, r.n)
end

coroutine.resume = resume
coroutine.wrap = function(f)
  local co = co_create(f)
  return function(...)
    local r = pack(resume(co, ...))
    if r[1] then
      return unpack(r, 2, r.n)
    end
    error(r[2], 0)
  end
end

-- Yields (CALL, ...) to the executor and returns its answer, or raises
-- its error at the level of the caller of `what` (call, invoke, require).
-- Callers must not tail-call it, so that the error level stays right.
local function wait(what, ...)
  if not isyieldable() then
    error(what .. '() cannot wait here (inside a metamethod or a library callback)', 3)
  end
  local ok, result = raw_yield(CALL, ...)
  guard()
  if ok then
    return result
  end
  error(result, 3)
end

-- call(plugin, action, payload): runs a plugin action on the server's
-- blocking pool while this invocation waits; the reactor serves others
-- meanwhile. Plugin errors are ordinary errors that pcall can catch.
function call(plugin, action, payload)
  if type(plugin) ~= 'string' then
    error("bad argument #1 to 'call' (plugin name expected, got " .. type(plugin) .. ")", 2)
  end
  if type(action) ~= 'string' then
    error("bad argument #2 to 'call' (action name expected, got " .. type(action) .. ")", 2)
  end
  return (wait('call', plugin, action, payload))
end

-- invoke(name, args): runs another action in an instance of its own, with
-- its own limits, while this invocation waits (its timeout still bounds
-- the whole). Returns the callee's result; a failed callee is an error
-- that pcall can catch.
function invoke(name, args)
  if type(name) ~= 'string' then
    error("bad argument #1 to 'invoke' (action name expected, got " .. type(name) .. ")", 2)
  end
  if args ~= nil and type(args) ~= 'table' then
    error("bad argument #2 to 'invoke' (table expected, got " .. type(args) .. ")", 2)
  end
  return (wait('invoke', INVOKE, name, args))
end

-- http.response(t) or http.response(status, body, headers): a web
-- response for a route, returned from main. `body` is a string (any
-- bytes; text/plain unless a Content-Type header says otherwise) or a
-- table (sent as JSON). The server writes the framing headers itself.
local RESPONSE = '$sl_response'
local to_int, utf8_len = math.tointeger, utf8.len
local framing = { ['content-length'] = true, ['transfer-encoding'] = true, connection = true }
local function web_response(status, body, headers)
  if type(status) == 'table' and body == nil and headers == nil then
    status, body, headers = status.status, status.body, status.headers
  end
  status = status == nil and 200 or to_int(status)
  if not status or status < 100 or status > 599 then
    error('http.response: status must be a whole number from 200 to 599', 3)
  end
  if status < 200 then
    -- A client reads past an interim response to the next one, which the
    -- body could forge.
    error('http.response: status ' .. status .. ' is informational (1xx), an interim response the server '
      .. 'alone sends; an action\'s response needs a final status, 200 to 599', 3)
  end
  local out = {}
  if headers ~= nil then
    if type(headers) ~= 'table' then
      error('http.response: headers must be a table of name = value', 3)
    end
    for k, v in pairs(headers) do
      if type(k) ~= 'string' or not k:find("^[!#$%%&'*+%-.^_`|~%w]+$") then
        error('http.response: invalid header name ' .. tostring(k), 3)
      end
      if type(v) == 'number' then
        v = tostring(v)
      end
      if type(v) ~= 'string' or v:find('[\r\n\0]') then
        error("http.response: header '" .. k .. "' must have a text value without line breaks", 3)
      end
      if framing[k:lower()] then
        error("http.response: header '" .. k .. "' is set by the server", 3)
      end
      out[k] = v
    end
  end
  local r = { [RESPONSE] = true, status = status, headers = out }
  local bt = type(body)
  if bt == 'number' then
    body, bt = tostring(body), 'string'
  end
  if bt == 'string' then
    -- Text as it is (readable when the response is invoked); other bytes
    -- in base64, as JSON strings are text.
    if utf8_len(body) then
      r.body = body
    else
      r.body_base64 = b64(body)
    end
  elseif bt == 'table' then
    r.json = body
  elseif body ~= nil then
    error('http.response: body must be a string or a table (got ' .. bt .. ')', 3)
  end
  return r
end

http = { response = web_response }

-- Reads all pieces of a load reader function here, in Lua, where the
-- hook can pause it (lua_load would call it where it cannot yield).
local function read_all(reader)
  local parts, n, total = {}, 0, 0
  while true do
    local piece = reader()
    if piece == nil or piece == '' then
      return join(parts, '', n)
    end
    if type(piece) ~= 'string' then
      error('reader function must return a string', 0)
    end
    total = total + #piece
    if total > MAX_STRING then
      refuse()
    end
    n = n + 1
    parts[n] = piece
  end
end

-- Text chunks only: binary chunks could break the VM. The parser runs in
-- C, where the hook never fires, so a big chunk is fed to it in pieces by
-- a Rust reader that checks the limits between pieces.
function load(chunk, name, mode, ...)
  if type(chunk) == 'function' then
    local ok, text = raw_pcall(read_all, chunk)
    guard()
    if not ok then
      return nil, text
    end
    chunk, name = text, name or '=(load)'
  end
  if type(chunk) == 'string' then
    name = name or chunk
    chunk = chunk_reader(chunk)
  end
  if select('#', ...) > 0 then
    return finish(raw_load(chunk, name, 't', (...)))
  end
  return finish(raw_load(chunk, name, 't'))
end

-- Finalizers run with hooks off, so they could outlive every limit.
function setmetatable(t, mt)
  if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then
    error('finalizers (__gc) are not available in the sandbox', 2)
  end
  return raw_setmetatable(t, mt)
end

-- Every argument is converted (its __tostring may have effects), but only
-- what fits in the logs (64 KiB an invocation) is kept.
local LOG_ROOM = 64 * 1024
function print(...)
  local args = pack(...)
  local parts, kept, room = {}, 0, LOG_ROOM
  for i = 1, args.n do
    local s = tostring(args[i])
    if room > 0 then
      if #s > room then
        s = str_sub(s, 1, room)
      end
      kept = kept + 1
      parts[kept] = s
      room = room - #s - 1
    end
  end
  emit(join(parts, '\t', kept))
end

-- Functions written in Rust return (ERR, message) instead of raising, so
-- that their errors reach user code as strings, like the standard library's.
local function raise_err(first, ...)
  if first == ERR then
    error((...), 0)
  end
  return first, ...
end

local function soft(f)
  return function(...)
    return raise_err(f(...))
  end
end

json = { null = null, encode = soft(encode), decode = soft(decode), array = soft(array) }

local raw_gmatch = string.gmatch
local soft_find = soft(string.find)
string.match = soft(string.match)
string.gsub = soft(string.gsub)
string.gmatch = function(...)
  return soft(raise_err(raw_gmatch(...)))
end
local gmatch = string.gmatch

local find, sub, byte = soft_find, string.sub, string.byte

local rust_gsub = string.gsub
local tointeger = math.tointeger

-- A plain search (plain, or a pattern without special characters) in a
-- string of more than PIECE bytes goes by spans of PIECE start positions:
-- one search works through the whole string without a pause otherwise.
local function find_long(s, p, init)
  local ls, lp = #s, #p
  if init > 0 then
    -- as given
  elseif init == 0 or init < -ls then
    init = 1
  else
    init = ls + init + 1
  end
  if init > ls + 1 then
    return nil
  end
  if lp == 0 then
    return init, init - 1
  end
  local last = ls - lp + 1
  local a = init
  while a <= last do
    local b = min(a + PIECE - 1, last)
    local i, resume = find_span(s, p, a, b)
    if i then
      return i, i + lp - 1
    end
    a = resume or b + 1
  end
  return nil
end

function string.find(s, p, init, plain)
  if type(s) == 'string' and type(p) == 'string' and #s > PIECE then
    local at = init == nil and 1 or tointeger(init)
    if at and (plain or not has_specials(p)) then
      return find_long(s, p, at)
    end
  end
  return soft_find(s, p, init, plain)
end

-- string.gsub with a function or table as the replacement runs here, in
-- Lua, so that the replacement can be paused like any other code (called
-- from the Rust gsub it could not yield). Same semantics as Lua 5.4.
local function gsub_lua(s, p, repl, max_n)
  local rt = type(repl)
  local len = #s
  if max_n == nil then
    max_n = len + 1
  else
    max_n = tointeger(max_n) or error("bad argument #4 to 'gsub' (number has no integer representation)", 3)
  end
  local anchor = byte(p, 1) == 94 -- '^'
  local out, k, n, total = {}, 0, 0, 0
  local pos, last_end = 1, nil
  while n < max_n do
    local r = pack(find(s, p, pos))
    local st, en = r[1], r[2]
    if st == nil then
      break
    end
    if en < st and st == last_end then
      -- An empty match where the previous match ended: keep one character.
      if st > len then
        break
      end
      k = k + 1
      out[k] = sub(s, st, st)
      pos = st + 1
    else
      if st > pos then
        k = k + 1
        out[k] = sub(s, pos, st - 1)
      end
      local v
      if rt == 'function' then
        if r.n > 2 then
          v = repl(unpack(r, 3, r.n))
        else
          v = repl(sub(s, st, en))
        end
      elseif r.n > 2 then
        v = repl[r[3]]
      else
        v = repl[sub(s, st, en)]
      end
      local vt = type(v)
      if not v then
        v = sub(s, st, en)
      elseif vt == 'number' then
        v = tostring(v)
      elseif vt ~= 'string' then
        error('invalid replacement value (a ' .. vt .. ')', 3)
      end
      total = total + #v + (st - pos)
      if total > MAX_STRING then
        refuse()
      end
      k = k + 1
      out[k] = v
      n = n + 1
      pos, last_end = en + 1, en + 1
    end
    if anchor then
      break
    end
  end
  if pos <= len then
    k = k + 1
    out[k] = sub(s, pos)
  end
  return join(out, '', k), n
end

function string.gsub(s, p, repl, max_n)
  local rt = type(repl)
  if (rt == 'function' or rt == 'table') and (type(s) == 'string' or type(s) == 'number')
      and (type(p) == 'string' or type(p) == 'number') then
    return gsub_lua(tostring(s), tostring(p), repl, max_n)
  end
  return rust_gsub(s, p, repl, max_n)
end

-- Lua's C functions for the work done in pieces below. They are called as
-- fields named like them, and not as tail calls, so that their error
-- messages name them as Lua would: the prelude is loaded without debug
-- information, so a local's name would be lost, but a field's name is a
-- constant of the code.
local lib = {
  rep = string.rep, concat = table.concat, move = table.move, tunpack = table.unpack,
  upper = string.upper, lower = string.lower, reverse = string.reverse,
  format = string.format, pack = string.pack, date = os.date, len = utf8.len,
  unpack = string.unpack, packsize = string.packsize, char = utf8.char,
}

local function int_arg(v, i, fname, level)
  if type(v) ~= 'number' and type(v) ~= 'string' then
    error(("bad argument #%d to '%s' (number expected, got %s)"):format(i, fname, v == nil and 'no value' or type(v)), level + 1)
  end
  return tointeger(v) or error(("bad argument #%d to '%s' (number has no integer representation)"):format(i, fname), level + 1)
end

-- Long strings. The C functions below work byte by byte where nothing can
-- pause them; strlib.rs sends a call here when its string is longer than
-- PIECE bytes (or its result would be), and these do the same work in
-- pieces of PIECE bytes.

-- f applied to each piece of s, in order (reversed: in reverse order).
local function by_pieces(f, s, reversed)
  local len = #s
  local n = (len + PIECE - 1) // PIECE
  local parts = {}
  for k = 0, n - 1 do
    local piece = f(sub(s, k * PIECE + 1, (k + 1) * PIECE))
    parts[reversed and n - k or k + 1] = piece
  end
  return join(parts, '', n)
end

local function upper_long(s)
  return by_pieces(lib.upper, s)
end

local function lower_long(s)
  return by_pieces(lib.lower, s)
end

local function reverse_long(s)
  return by_pieces(lib.reverse, s, true)
end

-- string.rep with a result longer than PIECE bytes (or more than PIECE
-- copies): at most MAX_STRING bytes, built by doubling with `..` (so an
-- empty string repeated any number of times costs nothing). strlib.rs
-- leaves results too large for Lua to C, which refuses them.
local function rep_long(s, n, sep)
  s = tostring(s)
  n = tointeger(n)
  sep = sep == nil and '' or tostring(sep)
  local total = #s * n + #sep * (n - 1)
  if total > MAX_STRING then
    refuse()
  end
  if total == 0 then
    return ''
  end
  -- (s .. sep) repeated n - 1 times, then s.
  local unit = sep == '' and s or s .. sep
  local parts, k, acc, m = {}, 0, unit, n - 1
  while m > 0 do
    if m % 2 == 1 then
      k = k + 1
      parts[k] = acc
    end
    m = m // 2
    if m > 0 then
      acc = acc .. acc
    end
  end
  parts[k + 1] = s
  return join(parts, '', k + 1)
end

-- %q of a long string: pieces quoted by C and joined. A control character
-- is escaped as \ddd when a digit follows it, so a piece never ends on one
-- that a digit follows.
local function quote_long(s)
  local parts, n, total = { '"' }, 1, 2
  local i, len = 1, #s
  while i <= len do
    local j = min(i + PIECE - 1, len)
    local c, d = byte(s, j, j + 1)
    if d and (c < 32 or c == 127) and d >= 48 and d <= 57 then
      j = j + 1
    end
    local q = lib.format('%q', sub(s, i, j))
    total = total + #q - 2
    if total > MAX_STRING then
      refuse()
    end
    n = n + 1
    parts[n] = sub(q, 2, -2)
    i = j + 1
  end
  parts[n + 1] = '"'
  return join(parts, '', n + 1)
end

-- C's error for item `i` (argument i + 1) of string.format with spec, as C
-- numbers it: the items before it are stood in for by '%.0s' of ''.
local function format_error(i, spec, n, arg)
  local fill = {}
  for k = 1, i - 1 do
    fill[k] = ''
  end
  fill[i] = arg
  local ok, message = raw_pcall(function()
    return lib.format(lib.rep('%.0s', i - 1) .. spec, unpack(fill, 1, i <= n and i or i - 1))
  end)
  error(ok and 'invalid format' or message, 0)
end

-- One item of string.format, with C's semantics.
local function format_item(spec, conv, args, i)
  local arg = args[i]
  if conv == 115 then -- s: tostring runs __tostring here, where it can be paused
    arg = tostring(arg)
    if spec == '%s' then
      return arg
    end
  elseif conv == 113 and spec == '%q' and type(arg) == 'string' and #arg > PIECE then
    return quote_long(arg)
  end
  local ok, r = raw_pcall(lib.format, spec, arg)
  if not ok then
    format_error(i, spec, args.n, arg)
  end
  return r
end

-- string.format with a long format, a long result, or arguments whose
-- text only __tostring knows: item by item, each by C (see strlib.rs).
local function format_long(fmt, ...)
  local args = pack(...)
  local parts, n, total = {}, 0, 0
  local function add(piece)
    total = total + #piece
    if total > MAX_STRING then
      refuse()
    end
    n = n + 1
    parts[n] = piece
  end
  local pos, len, i = 1, #fmt, 0
  while pos <= len do
    local p = find(fmt, '%', pos, true)
    if p == nil then
      add(sub(fmt, pos))
      break
    end
    if p > pos then
      add(sub(fmt, pos, p - 1))
    end
    if byte(fmt, p + 1) == 37 then
      add('%')
      pos = p + 2
    else
      i = i + 1
      -- The conversion follows the flags, width and precision (as C's
      -- getformat reads them).
      local e = find(fmt, '[^%-%+#0 1-9%.]', p + 1) or len + 1
      local spec = sub(fmt, p, e)
      if i > args.n or e > len then
        format_error(i, spec, args.n, args[i])
      end
      add(format_item(spec, byte(fmt, e), args, i))
      pos = e + 1
    end
  end
  return join(parts, '', n)
end

-- string.pack with a long format or a result that may be long: the result
-- is at most 16 bytes an option, plus the sizes written in the format,
-- plus the strings packed; past MAX_STRING it is refused (as the
-- allocator would refuse the result).
local function pack_long(fmt, ...)
  local bound = 16 * #fmt
  for digits in gmatch(fmt, '%d+') do
    bound = bound + (to_number(digits) or MAX_STRING)
  end
  local args = pack(...)
  for k = 1, args.n do
    if type(args[k]) == 'string' then
      bound = bound + #args[k]
    end
  end
  if bound > MAX_STRING then
    refuse()
  end
  return (lib.pack(fmt, ...))
end

-- os.date with a long format: pieces of at most 4000 bytes (no conversion
-- cut in two), each formatted by C for the same time.
local function date_long(fmt, t)
  if t == nil then
    t = os_time()
  end
  local prefix, i, len = '', 1, #fmt
  if byte(fmt, 1) == 33 then -- '!': UTC
    prefix, i = '!', 2
  end
  local parts, n, total = {}, 0, 0
  while i <= len do
    local j = min(i + 3999, len)
    local at = i
    while j < len do
      local q = find(fmt, '%', at, true)
      if q == nil or q > j then
        break
      end
      local c = byte(fmt, q + 1)
      local last = (c == 69 or c == 79) and q + 2 or q + 1 -- %Ex, %Ox
      if last > j then
        j = q - 1
        break
      end
      at = last + 1
    end
    local piece = lib.date(prefix .. sub(fmt, i, j), t)
    total = total + #piece
    if total > MAX_STRING then
      refuse()
    end
    n = n + 1
    parts[n] = piece
    i = j + 1
  end
  return join(parts, '', n)
end

-- utf8.len of a long string: the characters of pieces of about PIECE
-- bytes, each ending where no character goes on (a continuation byte does
-- not follow it; a character has at most 5 of them).
local function utf8_len_long(s, i, j, lax)
  local len = #s
  local function pos(v, default, arg)
    v = v == nil and default or int_arg(v, arg, 'len', 3) -- level 4: the dispatcher
    if v >= 0 then
      return v
    end
    return -v > len and 0 or len + v + 1
  end
  local posi, posj = pos(i, 1, 2), pos(j, -1, 3)
  if posi < 1 or posi - 1 > len or posj - 1 >= len then
    return lib.len(s, i, j, lax) -- its error
  end
  local n, a = 0, posi
  while a <= posj do
    local b = min(a + PIECE - 1, posj)
    local k = 0
    while b < posj and k < 5 do
      local c = byte(s, b + 1)
      if c < 0x80 or c >= 0xC0 then
        break
      end
      b, k = b + 1, k + 1
    end
    local count, at = lib.len(s, a, b, lax)
    if count == nil then
      return count, at
    end
    n = n + count
    a = b + 1
  end
  return n
end

-- A pack format cut into pieces of about 4096 bytes at option boundaries,
-- each with a prefix that restores the endianness and maximum alignment in
-- force where it starts (an option is a letter or one of !<>= and its
-- digits; X takes the option after it).
local function format_pieces(fmt)
  local prefixes, pieces, n = {}, {}, 0
  local endian, align = '', ''
  local i, len = 1, #fmt
  while i <= len do
    local prefix = endian .. align
    local j, stop = i, min(i + 4095, len)
    while j <= stop do
      local c = byte(fmt, j)
      local k = j + 1
      if c == 88 then -- X
        k = k + 1
      end
      local d = byte(fmt, k)
      while d and d >= 48 and d <= 57 do
        k = k + 1
        d = byte(fmt, k)
      end
      if c == 60 or c == 61 or c == 62 then -- < = >
        endian = sub(fmt, j, j)
      elseif c == 33 then -- !
        align = sub(fmt, j, k - 1)
      end
      j = k
    end
    n = n + 1
    prefixes[n], pieces[n] = prefix, sub(fmt, i, j - 1)
    i = j
  end
  return prefixes, pieces, n
end

-- string.unpack with a long format: piece by piece, each going on from
-- where the last one stopped in the data (alignment counts from its start).
local function unpack_long(fmt, s, pos)
  local prefixes, pieces, np = format_pieces(fmt)
  local out, m = {}, 0
  for k = 1, np do
    local r = pack(lib.unpack(prefixes[k] .. pieces[k], s, pos))
    for q = 1, r.n - 1 do
      m = m + 1
      out[m] = r[q]
    end
    pos = r[r.n]
  end
  out[m + 1] = pos
  return lib.tunpack(out, 1, m + 1)
end

-- string.packsize with a long format: the sizes of the pieces, each placed
-- where the last one ended (alignment is at most 16).
local function packsize_long(fmt)
  local prefixes, pieces, np = format_pieces(fmt)
  local total = 0
  for k = 1, np do
    local pad = total % 16
    total = total + lib.packsize(prefixes[k] .. lib.rep('x', pad) .. pieces[k]) - pad
    if total > 0x7fffffff then
      return (lib.packsize('c2147483647c1')) -- its "format result too large"
    end
  end
  return total
end

-- utf8.char of more than LOOP characters: LOOP at a time.
local function utf8_char_long(...)
  local args = pack(...)
  local parts, n = {}, 0
  for k = 1, args.n, LOOP do
    local last = min(k + LOOP - 1, args.n)
    local ok, piece = raw_pcall(lib.char, unpack(args, k, last))
    if not ok then
      -- C's error, numbered for the whole call: the arguments before the
      -- bad one stood in for by 0.
      for i = k, last do
        if not raw_pcall(lib.char, args[i]) then
          local fill = {}
          for q = 1, i - 1 do
            fill[q] = 0
          end
          fill[i] = args[i]
          lib.char(unpack(fill, 1, i))
        end
      end
    end
    n = n + 1
    parts[n] = piece
  end
  return join(parts, '', n)
end

string.unpack = guarded('string.unpack', string.unpack, unpack_long)
string.packsize = guarded('string.packsize', string.packsize, packsize_long)
utf8.char = guarded('utf8.char', utf8.char, utf8_char_long)
string.rep = guarded('string.rep', string.rep, rep_long)
string.upper = guarded('string.upper', string.upper, upper_long)
string.lower = guarded('string.lower', string.lower, lower_long)
string.reverse = guarded('string.reverse', string.reverse, reverse_long)
string.format = guarded('string.format', string.format, format_long)
string.pack = guarded('string.pack', string.pack, pack_long)
os.date = guarded('os.date', os.date, date_long)
utf8.len = guarded('utf8.len', utf8.len, utf8_len_long)
utf8_len = utf8.len

-- The table functions of Lua's library loop in C, where the hook never
-- fires, over a range that the table's length sets, and neither the
-- length nor a loop over absent slots is bounded by what the table holds.
-- tablelib.rs sends long loops (and tables with the metamethods the loop
-- would call) here. Each Lua version gets a first argument `plain`: the
-- table has none of those metamethods, so C may do the work in pieces of
-- at most LOOP slots; otherwise it is done here element by element, where
-- every metamethod runs as Lua code under the hook.
local sort, insert, remove, move = table.sort, table.insert, table.remove, table.move
local maxinteger = math.maxinteger

local function length(t, level)
  local n = #t
  return tointeger(n) or error('object length is not an integer', level + 1)
end

-- table.move of plain tables in C pieces of at most LOOP slots, in the
-- order C would move them (f <= e, checked by the caller as C does).
local function move_span(a1, f, e, t, a2)
  local n = e - f
  if t > e or t <= f or not rawequal(a1, a2) then
    local k = 0
    while k <= n do
      local m = min(n - k, LOOP - 1)
      lib.move(a1, f + k, f + k + m, t + k, a2)
      if m == n - k then
        break
      end
      k = k + m + 1
    end
  else
    local k = n
    while k >= 0 do
      local m = min(k, LOOP - 1)
      lib.move(a1, f + k - m, f + k, t + k - m, a2)
      k = k - m - 1
    end
  end
end

local function less(a, b)
  return a < b
end

local function sort_range(t, lo, hi, lt)
  while lo < hi do
    if hi - lo < 12 then
      for i = lo + 1, hi do
        local v = t[i]
        local j = i - 1
        while j >= lo and lt(v, t[j]) do
          t[j + 1] = t[j]
          j = j - 1
        end
        t[j + 1] = v
      end
      return
    end
    local mid = lo + (hi - lo) // 2
    if lt(t[mid], t[lo]) then
      t[mid], t[lo] = t[lo], t[mid]
    end
    if lt(t[hi], t[mid]) then
      t[hi], t[mid] = t[mid], t[hi]
      if lt(t[mid], t[lo]) then
        t[mid], t[lo] = t[lo], t[mid]
      end
    end
    local p = t[mid]
    local i, j = lo, hi
    while i <= j do
      while lt(t[i], p) do
        i = i + 1
        if i > hi then
          error('invalid order function for sorting', 4)
        end
      end
      while lt(p, t[j]) do
        j = j - 1
        if j < lo then
          error('invalid order function for sorting', 4)
        end
      end
      if i <= j then
        t[i], t[j] = t[j], t[i]
        i, j = i + 1, j - 1
      end
    end
    if j - lo < hi - i then
      sort_range(t, lo, j, lt)
      lo = i
    else
      sort_range(t, i, hi, lt)
      hi = j
    end
  end
end

local function lua_sort(_, t, comp)
  local n = length(t, 2)
  if n > 1 then
    sort_range(t, 1, n, comp or less)
  end
end

local function lua_concat(plain, t, sep, i, j)
  if sep ~= nil and type(sep) ~= 'string' and type(sep) ~= 'number' then
    return (lib.concat({}, sep)) -- its error message
  end
  sep = sep == nil and '' or tostring(sep)
  i = i == nil and 1 or int_arg(i, 3, 'concat', 2)
  j = j == nil and length(t, 2) or int_arg(j, 4, 'concat', 2)
  local parts, n, total = {}, 0, 0
  if plain then
    -- C pieces of at most LOOP items, measured first.
    local k = i
    while k <= j do
      local b = j - k < LOOP and j or k + LOOP - 1
      local len = span_len(t, sep, k, b)
      if len then
        total = total + len + (n > 0 and #sep or 0)
        if total > MAX_STRING then
          refuse()
        end
      end
      n = n + 1
      parts[n] = lib.concat(t, sep, k, b) -- its error for an item that is not text
      if b == j then
        break
      end
      k = b + 1
    end
    return join(parts, sep, n)
  end
  for k = i, j do
    local v = t[k]
    local vt = type(v)
    if vt ~= 'string' and vt ~= 'number' then
      error(("invalid value (%s) at index %d in table for 'concat'"):format(vt, k), 2)
    end
    v = tostring(v)
    total = total + #v + (n > 0 and #sep or 0)
    if total > MAX_STRING then
      refuse()
    end
    n = n + 1
    parts[n] = v
  end
  return join(parts, sep, n)
end

local function lua_insert(plain, t, ...)
  local nargs = select('#', ...)
  local e = length(t, 2) + 1
  if nargs == 1 then
    t[e] = ...
    return
  elseif nargs ~= 2 then
    error("wrong number of arguments to 'insert'", 2)
  end
  local pos, v = ...
  pos = int_arg(pos, 2, 'insert', 2)
  if pos < 1 or pos > e then
    error("bad argument #2 to 'insert' (position out of bounds)", 2)
  end
  if plain then
    if pos < e then
      move_span(t, pos, e - 1, pos + 1, t)
    end
  else
    for k = e, pos + 1, -1 do
      t[k] = t[k - 1]
    end
  end
  t[pos] = v
end

local function lua_remove(plain, t, pos)
  local size = length(t, 2)
  if pos == nil then
    pos = size
  else
    pos = int_arg(pos, 2, 'remove', 2)
    if pos ~= size and (pos < 1 or pos > size + 1) then
      error("bad argument #2 to 'remove' (position out of bounds)", 2)
    end
  end
  local v = t[pos]
  if plain then
    if pos < size then
      move_span(t, pos + 1, size, pos, t)
      pos = size
    end
  else
    while pos < size do
      t[pos] = t[pos + 1]
      pos = pos + 1
    end
  end
  t[pos] = nil
  return v
end

local function lua_move(plain, a1, f, e, t, a2)
  if a2 == nil then
    a2 = a1
  end
  if type(a2) ~= 'table' then
    return (lib.move(a1, f, e, t, a2)) -- its error message
  end
  f = int_arg(f, 2, 'move', 2)
  e = int_arg(e, 3, 'move', 2)
  t = int_arg(t, 4, 'move', 2)
  if e >= f then
    if not (f > 0 or e < maxinteger + f) then
      error("bad argument #3 to 'move' (too many elements to move)", 2)
    end
    local n = e - f
    if t > maxinteger - n then
      error("bad argument #4 to 'move' (destination wrap around)", 2)
    end
    if plain then
      move_span(a1, f, e, t, a2)
    elseif t > e or t <= f or not rawequal(a1, a2) then
      for k = 0, n do
        a2[t + k] = a1[f + k]
      end
    else
      for k = n, 0, -1 do
        a2[t + k] = a1[f + k]
      end
    end
  end
  return a2
end

-- table.unpack of a table with __index or __len: its items are read here,
-- where each read (down an __index chain of up to 2,000 tables) is one
-- instruction, into a plain table that C unpacks.
local function lua_unpack(t, i, j)
  i = i == nil and 1 or int_arg(i, 2, 'unpack', 2)
  j = j == nil and length(t, 2) or int_arg(j, 3, 'unpack', 2)
  if i > j then
    return
  end
  local n = j - i
  if n < 0 or n >= 1000000 then -- a wrapped or an impossible count, as C says
    error('too many results to unpack', 0)
  end
  local items = {}
  for k = 0, n do
    items[k + 1] = t[i + k]
  end
  return lib.tunpack(items, 1, n + 1)
end

table.sort = guarded('table.sort', sort, lua_sort)
table.concat = guarded('table.concat', concat, lua_concat)
table.insert = guarded('table.insert', insert, lua_insert)
table.remove = guarded('table.remove', remove, lua_remove)
table.move = guarded('table.move', move, lua_move)
table.unpack = guarded('table.unpack', unpack, lua_unpack)

os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }
string.dump = nil
getmetatable('').__metatable = false
dofile, loadfile, collectgarbage, warn, require, module = nil, nil, nil, nil, nil, nil

-- require(name): the table returned by the library action `name`, an
-- action whose chunk returns a table (and defines no main). Its bytecode
-- comes from the store, compiled when it was created; it runs once per
-- instance, in this sandbox and under this invocation's limits, and the
-- table is kept for later invocations of this warm instance.
local modules, loading = {}, {}
function require(name)
  if type(name) ~= 'string' then
    error("bad argument #1 to 'require' (library action name expected, got " .. type(name) .. ")", 2)
  end
  local m = modules[name]
  if m ~= nil then
    return m
  end
  if loading[name] then
    error("require: '" .. name .. "' is required again while it loads (a require cycle)", 2)
  end
  local chunk = wait('require', REQUIRE, name)
  loading[name] = true
  local done, result = raw_pcall(chunk, name)
  guard()
  loading[name] = nil
  if not done then
    error(result, 0)
  end
  if type(result) ~= 'table' then
    error("require: the library action '" .. name .. "' must return a table (it returned " .. type(result) .. ')', 2)
  end
  modules[name] = result
  return result
end
