-- The Lua versions of the guarded library functions (see dispatch.rs,
-- tablelib.rs and strlib.rs), loaded in a state the first time a call
-- needs one of them (prelude.lua, long_version). They receive what they
-- use from the prelude as arguments: the raw C functions (lib) and the
-- prelude's locals, so that user code can reach none of them and replacing
-- a global changes nothing here. Each returns what the C function would.
local lib, join, refuse, span_len, find_span, has_specials, soft_find, PIECE, LOOP, MAX_STRING, VALUES,
  pack, unpack, concat, select, tostring, type, rawequal, error, raw_pcall, min, to_number, tointeger,
  os_time, maxinteger, byte, sub, find, gmatch, rust_find, ERR, PAUSED, unpause = ...

local function int_arg(v, i, fname, level)
  if type(v) ~= 'number' and type(v) ~= 'string' then
    error(("bad argument #%d to '%s' (number expected, got %s)"):format(i, fname, v == nil and 'no value' or type(v)), level + 1)
  end
  return tointeger(v) or error(("bad argument #%d to '%s' (number has no integer representation)"):format(i, fname), level + 1)
end

-- A plain search (plain, or a pattern without special characters) in a
-- string of more than PIECE bytes, by spans of PIECE start positions
-- (strings.rs, find_span); anything else goes to the Rust string.find.
local function find_long(s, p, init, plain)
  local at = init == nil and 1 or tointeger(init)
  if not at or not (plain or not has_specials(p)) then
    return soft_find(s, p, init, plain)
  end
  local ls, lp = #s, #p
  if at <= 0 then
    at = (at == 0 or at < -ls) and 1 or ls + at + 1
  end
  if at > ls + 1 then
    return nil
  end
  if lp == 0 then
    return at, at - 1
  end
  local last = ls - lp + 1
  while at <= last do
    local b = min(at + PIECE - 1, last)
    local i, resume = find_span(s, p, at, b)
    if i then
      return i, i + lp - 1
    end
    at = resume or b + 1
  end
  return nil
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
-- copies): at most MAX_STRING bytes, made by C from pieces of about
-- PIECE bytes (an empty string repeated any number of times costs
-- nothing). strlib.rs leaves results too large for Lua to C, which refuses
-- them.
local function rep_long(s, n, sep)
  s = tostring(s)
  n = tointeger(n)
  sep = sep == nil and '' or tostring(sep)
  local total = #s * n + #sep * (n - 1)
  if total > MAX_STRING then
    refuse()
  end
  if total <= 0 or n <= 0 then
    return ''
  end
  -- Lua's C function copies `s` (and `sep`) once per copy, n times, into
  -- a buffer of the result's size. Here C makes a piece q of `per` copies
  -- (about PIECE bytes), then the result from k copies of q (k iterations
  -- of PIECE bytes each), and the r copies left over: the same bytes, in
  -- few C iterations, holding at most a piece more than C would.
  local per = #s + #sep >= PIECE and 1 or PIECE // (#s + #sep)
  if per > n then
    per = n
  end
  local k, r = n // per, n % per
  local q = per == 1 and s or lib.rep(s, per, sep)
  local body = lib.rep(q, k, sep)
  if r == 0 then
    return body
  end
  return body .. sep .. lib.rep(s, r, sep)
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
    if m + r.n > VALUES then -- C checks its stack for each result
      error('stack overflow (too many results)', 3)
    end
    for q = 1, r.n - 1 do
      m = m + 1
      out[m] = r[q]
    end
    pos = r[r.n]
  end
  out[m + 1] = pos
  return lib.tunpack(out, 1, m + 1)
end

-- string.byte and utf8.codepoint of more than VALUES bytes (strlib.rs):
-- the error C raises when its stack cannot hold the results.
local function byte_long()
  error('stack overflow (string slice too long)', 3)
end

local codepoint_long = byte_long

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

-- utf8.char of more than LOOP characters: LOOP at a time. The dispatcher
-- passes them in a table (up to a million could not be copied as `...`).
local function utf8_char_long(args)
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

-- Tables (see tablelib.rs). Each Lua version but lua_unpack gets a first
-- argument `plain`: the table has none of the metamethods the loop would
-- call, so C may do the work in pieces of at most LOOP slots; otherwise it
-- is done here element by element, where every metamethod runs as Lua code
-- under the hook.
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

local function lt(a, b)
  return a < b
end

-- a < b for sort without a comparator. Items other than two numbers or two
-- strings (tables with __lt, or a mistake) are compared under pcall, so
-- that Lua's error for items that cannot be compared is raised without a
-- position, as Lua's C sort raises it (this chunk has no line information
-- to give: its errors would say "?:-1:").
local function less(a, b)
  local ta, tb = type(a), type(b)
  if ta == tb and (ta == 'number' or ta == 'string') then
    return a < b
  end
  local ok, r = raw_pcall(lt, a, b)
  if ok then
    return r
  end
  if type(r) == 'string' and sub(r, 1, 6) == '?:-1: ' then
    r = sub(r, 7)
  end
  error(r, 0)
end

-- Lua 5.4's own sort (ltablib.c, auxsort and partition), step by step:
-- the same comparisons in the same order, so that the order of equal
-- items, what a comparator sees, and when "invalid order function for
-- sorting" is raised are all Lua's. Like Lua, it picks the middle item
-- as the pivot until a partition comes out too unbalanced, and from then
-- on a pivot from a key that changes with the time. d is the number of
-- auxsort calls above this one, so that errors name the line of the code
-- that called table.sort (level 4 + d).
local function auxsort(t, lo, up, lt, rnd, d)
  while lo < up do
    local a, b = t[lo], t[up]
    if lt(b, a) then
      t[lo] = b
      t[up] = a
    end
    if up - lo == 1 then
      break
    end
    local p
    if up - lo < 100 or rnd == 0 then
      p = (lo + up) // 2
    else
      local r4 = (up - lo) // 4
      p = rnd % (r4 * 2) + (lo + r4)
    end
    a, b = t[p], t[lo]
    if lt(a, b) then
      t[p] = b
      t[lo] = a
    else
      b = t[up]
      if lt(b, a) then
        t[p] = b
        t[up] = a
      end
    end
    if up - lo == 2 then
      break
    end
    local pivot = t[p]
    t[p] = t[up - 1]
    t[up - 1] = pivot
    -- partition: a[lo .. i] <= pivot <= a[j .. up], a[up - 1] == pivot
    local i, j = lo, up - 1
    while true do
      i = i + 1
      a = t[i]
      while lt(a, pivot) do
        if i == up - 1 then
          error('invalid order function for sorting', 4 + d)
        end
        i = i + 1
        a = t[i]
      end
      j = j - 1
      b = t[j]
      while lt(pivot, b) do
        if j < i then
          error('invalid order function for sorting', 4 + d)
        end
        j = j - 1
        b = t[j]
      end
      if j < i then
        t[up - 1] = a
        t[i] = pivot
        p = i
        break
      end
      t[i] = b
      t[j] = a
    end
    local n
    if p - lo < up - p then
      auxsort(t, lo, p - 1, lt, rnd, d + 1)
      n = p - lo
      lo = p + 1
    else
      auxsort(t, p + 1, up, lt, rnd, d + 1)
      n = up - p
      up = p - 1
    end
    if up > lo and (up - lo) // 128 > n then
      rnd = os_time() % 0x7fffffff + 1
    end
  end
end

local function lua_sort(_, t, comp)
  local n = length(t, 3)
  if n >= 0x7fffffff then
    error("bad argument #1 to 'sort' (array too big)", 3)
  end
  if n > 1 then
    auxsort(t, 1, n, comp or less, 0, 0)
  end
end

local function lua_concat(plain, t, sep, i, j)
  if sep ~= nil and type(sep) ~= 'string' and type(sep) ~= 'number' then
    return (lib.concat({}, sep)) -- its error message
  end
  sep = sep == nil and '' or tostring(sep)
  i = i == nil and 1 or int_arg(i, 3, 'concat', 3)
  j = j == nil and length(t, 3) or int_arg(j, 4, 'concat', 3)
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
      -- Its error for an item that is not text, at the caller's line.
      local ok, part = raw_pcall(lib.concat, t, sep, k, b)
      if not ok then
        error(part, 3)
      end
      parts[n] = part
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
      error(("invalid value (%s) at index %d in table for 'concat'"):format(vt, k), 3)
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
  local e = length(t, 3) + 1
  if nargs == 1 then
    t[e] = ...
    return
  elseif nargs ~= 2 then
    error("wrong number of arguments to 'insert'", 3)
  end
  local pos, v = ...
  pos = int_arg(pos, 2, 'insert', 3)
  if pos < 1 or pos > e then
    error("bad argument #2 to 'insert' (position out of bounds)", 3)
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
  local size = length(t, 3)
  if pos == nil then
    pos = size
  else
    pos = int_arg(pos, 2, 'remove', 3)
    if pos ~= size and (pos < 1 or pos > size + 1) then
      error("bad argument #2 to 'remove' (position out of bounds)", 3)
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
  f = int_arg(f, 2, 'move', 3)
  e = int_arg(e, 3, 'move', 3)
  t = int_arg(t, 4, 'move', 3)
  if e >= f then
    if not (f > 0 or e < maxinteger + f) then
      error("bad argument #3 to 'move' (too many elements to move)", 3)
    end
    local n = e - f
    if t > maxinteger - n then
      error("bad argument #4 to 'move' (destination wrap around)", 3)
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
-- instruction, into a plain table that C unpacks. Also reached by a range
-- of more than VALUES items of any value, for C's error.
local function lua_unpack(t, i, j)
  i = i == nil and 1 or int_arg(i, 2, 'unpack', 3)
  j = j == nil and length(t, 3) or int_arg(j, 3, 'unpack', 3)
  if i > j then
    return
  end
  local n = j - i
  if n < 0 or n >= VALUES then -- a wrapped count, or more than one call may return
    error('too many results to unpack', 3)
  end
  local items = {}
  for k = 0, n do
    items[k + 1] = t[i + k]
  end
  return lib.tunpack(items, 1, n + 1)
end

-- string.gsub with a function or table as the replacement (prelude.lua),
-- in Lua, so that the replacement can be paused like any other code.
-- Same semantics as Lua 5.4. Reached by tail calls only: level 2 of its
-- errors is the caller's code.
local function gsub_lua(s, p, repl, max_n)
  local rt = type(repl)
  local len = #s
  if max_n == nil then
    max_n = len + 1
  else
    max_n = tointeger(max_n) or error("bad argument #4 to 'gsub' (number has no integer representation)", 2)
  end
  local anchor = byte(p, 1) == 94 -- '^'
  local out, k, n, total, changed = {}, 0, 0, 0, false
  local pos, last_end = 1, nil
  while n < max_n do
    local r = pack(rust_find(s, p, pos))
    if r[1] == PAUSED then
      r = pack(unpause(r[2]))
    end
    local st, en = r[1], r[2]
    if st == ERR then
      error(en, 2)
    end
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
        v, changed = tostring(v), true
      elseif vt == 'string' then
        changed = true
      else
        error('invalid replacement value (a ' .. vt .. ')', 2)
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
  if not changed then
    return s, n -- as Lua: no substitution gives back the subject itself
  end
  return join(out, '', k), n
end

return {
  gsub_lua = gsub_lua,
  unpack_long = unpack_long, packsize_long = packsize_long, utf8_char_long = utf8_char_long,
  byte_long = byte_long, codepoint_long = codepoint_long,
  rep_long = rep_long, upper_long = upper_long, lower_long = lower_long, reverse_long = reverse_long,
  format_long = format_long, pack_long = pack_long, date_long = date_long, utf8_len_long = utf8_len_long,
  lua_sort = lua_sort, lua_concat = lua_concat, lua_insert = lua_insert, lua_remove = lua_remove,
  lua_move = lua_move, lua_unpack = lua_unpack, find_long = find_long,
}
