-- The sandbox prelude: runs once in every new Lua state, before user code.
-- It receives trusted Rust functions as arguments and closes over the raw
-- library functions it wraps, so user code can never reach them.
local take_preempt, PREEMPT, guard, emit, encode, decode, null, ERR, CALL, stall, wrap_handler, chunk_reader, guarded, INVOKE, REQUIRE, b64, array, limits, refuse, span_len, find_span, has_specials, load_long, PAUSED, set_index_helper, PUBLISH = ...

-- The iterator of ipairs (baselib.rs) reads through __index with this, where
-- the hook can pause an __index function.
set_index_helper(function(t, i) return t[i] end)

local raw_pcall, raw_xpcall, raw_load, raw_setmetatable = pcall, xpcall, load, setmetatable
local raw_resume, raw_yield, isyieldable, co_create = coroutine.resume, coroutine.yield, coroutine.isyieldable, coroutine.create
local pack, unpack, concat, select, tostring, type, rawget, rawequal, error =
  table.pack, table.unpack, table.concat, select, tostring, type, rawget, rawequal, error
local min, str_sub, to_number, os_time, maxinteger = math.min, string.sub, tonumber, os.time, math.maxinteger

-- No C call works through more than PIECE bytes of a string or LOOP table
-- slots at a time, and no string is longer than MAX_STRING bytes (see
-- SECURITY.md, "The sandbox audit"): code here that builds strings from pieces
-- counts their length and calls refuse() (a memory error that cannot be
-- caught, as the allocator's refusal of a longer string) before it would
-- pass that.
local PIECE, LOOP, MAX_STRING, VALUES = limits.piece, limits.loop, limits.max_string, limits.values

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

-- Loads a Lua version of prelude_long.lua by name (defined below).
local long_version

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
        res = pack(false, 'call() cannot wait here (where Lua cannot yield: an xpcall message handler, a __close run by coroutine.close)')
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
    error(what .. '() cannot wait here (where Lua cannot yield: an xpcall message handler, a __close run by coroutine.close)', 3)
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
-- Lua's errors are raised here, at the caller's line, as Lua does.
function setmetatable(...)
  local t, mt = ...
  local n = select('#', ...)
  if type(t) ~= 'table' then
    error("bad argument #1 to 'setmetatable' (table expected, got " .. (n < 1 and 'no value' or type(t)) .. ')', 2)
  end
  if n < 2 or (mt ~= nil and type(mt) ~= 'table') then
    error("bad argument #2 to 'setmetatable' (nil or table expected, got " .. (n < 2 and 'no value' or type(mt))
      .. ')', 2)
  end
  if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then
    error('finalizers (__gc) are not available in the sandbox', 2)
  end
  local ok, r = raw_pcall(raw_setmetatable, t, mt)
  if not ok then
    error(r, 2)
  end
  return r
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

-- A pattern call that outlived its time slice returns (PAUSED, resume)
-- (strings.rs): pause this invocation as the hook does (or, where Lua
-- cannot yield, count the time against the stall bound), then go on with
-- the call, until it returns its results.
local function unpause(resume)
  while true do
    if isyieldable() then
      raw_yield(PREEMPT)
    else
      stall()
    end
    local r = pack(resume())
    if r[1] ~= PAUSED then
      return unpack(r, 1, r.n)
    end
  end
end

-- The string functions' errors name the line of the code that called
-- them, as Lua's do ("input:3: malformed pattern ..."): level 2 is that
-- code when raise_lib is reached by tail calls only, as from lib_soft.
local function raise_lib(first, ...)
  if first == ERR then
    error((...), 2)
  end
  if first == PAUSED then
    return raise_lib(unpause((...)))
  end
  return first, ...
end

local function lib_soft(f)
  return function(...)
    return raise_lib(f(...))
  end
end

-- raise_lib for the string.gmatch below, which calls it (not a tail call).
local function raise_gmatch(first, ...)
  if first == ERR then
    error((...), 3)
  end
  return first, ...
end

local raw_gmatch, rust_find = string.gmatch, string.find
local soft_find = lib_soft(string.find)
string.match = lib_soft(string.match)
string.gsub = lib_soft(string.gsub)
string.gmatch = function(...)
  return lib_soft(raise_gmatch(raw_gmatch(...)))
end
local gmatch = string.gmatch

local find, sub, byte = soft_find, string.sub, string.byte

local rust_gsub = string.gsub
local tointeger = math.tointeger

-- A plain search in a string of more than PIECE bytes goes by spans
-- (find_long in prelude_long.lua): one search works through the whole
-- string without a pause otherwise.
function string.find(...)
  local s, p = ...
  if type(s) == 'string' and #s > PIECE and type(p) == 'string' then
    return long_version('find_long')(...)
  end
  return soft_find(...)
end

-- string.gsub with a function or table as the replacement runs in Lua
-- (gsub_lua in prelude_long.lua), so that the replacement can be paused
-- like any other code (called from the Rust gsub it could not yield).
-- A tail call: level 2 of its errors is the caller's code.
function string.gsub(s, p, repl, max_n)
  local rt = type(repl)
  if (rt == 'function' or rt == 'table') and (type(s) == 'string' or type(s) == 'number')
      and (type(p) == 'string' or type(p) == 'number') then
    return long_version('gsub_lua')(tostring(s), tostring(p), repl, max_n)
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

-- The Lua versions of the guarded functions (dispatch.rs) are in
-- prelude_long.lua, loaded in a state the first time one of them is needed
-- (most states never need one, and they would take some 20 KB of each):
-- a dispatcher calls this with its version's name.
local long_fns
function long_version(name)
  if long_fns == nil then
    long_fns = load_long(lib, join, refuse, span_len, find_span, has_specials, soft_find, PIECE, LOOP, MAX_STRING, VALUES,
      pack, unpack, concat, select, tostring, type, rawequal, error, raw_pcall, min, to_number, tointeger,
      os_time, maxinteger, byte, sub, find, gmatch, rust_find, ERR, PAUSED, unpause)
  end
  return long_fns[name]
end

string.unpack = guarded('string.unpack', string.unpack, long_version)
string.byte = guarded('string.byte', string.byte, long_version)
utf8.codepoint = guarded('utf8.codepoint', utf8.codepoint, long_version)
string.packsize = guarded('string.packsize', string.packsize, long_version)
utf8.char = guarded('utf8.char', utf8.char, long_version)
string.rep = guarded('string.rep', string.rep, long_version)
string.upper = guarded('string.upper', string.upper, long_version)
string.lower = guarded('string.lower', string.lower, long_version)
string.reverse = guarded('string.reverse', string.reverse, long_version)
string.format = guarded('string.format', string.format, long_version)
string.pack = guarded('string.pack', string.pack, long_version)
os.date = guarded('os.date', os.date, long_version)
utf8.len = guarded('utf8.len', utf8.len, long_version)
utf8_len = utf8.len

-- The table functions of Lua's library loop in C, where the hook never
-- fires, over a range that the table's length sets, and neither the
-- length nor a loop over absent slots is bounded by what the table holds.
-- tablelib.rs sends long loops (and tables with the metamethods the loop
-- would call) to their Lua versions (in prelude_long.lua).
local sort, insert, remove, move = table.sort, table.insert, table.remove, table.move

table.sort = guarded('table.sort', sort, long_version)
table.concat = guarded('table.concat', concat, long_version)
table.insert = guarded('table.insert', insert, long_version)
table.remove = guarded('table.remove', remove, long_version)
table.move = guarded('table.move', move, long_version)
table.unpack = guarded('table.unpack', unpack, long_version)

os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }
string.dump = nil
getmetatable('').__metatable = false
dofile, loadfile, collectgarbage, warn, require, module = nil, nil, nil, nil, nil, nil

-- require(name): as in Lua, the built-in libraries by their names
-- (require('utf8') is utf8); otherwise the table returned by the library
-- action `name`, an action whose chunk returns a table (and defines no
-- main). Its bytecode comes from the store, compiled when it was created;
-- it runs once per instance, in this sandbox and under this invocation's
-- limits, and the table is kept for later invocations of this warm
-- instance.
local modules = {
  string = string, table = table, math = math, utf8 = utf8, coroutine = coroutine, os = os,
}
local loading = {}
function require(...)
  local name = ...
  if type(name) == 'number' then
    name = tostring(name)
  elseif type(name) ~= 'string' then
    error("bad argument #1 to 'require' (string expected, got " .. (select('#', ...) == 0 and 'no value' or type(name))
      .. ")", 2)
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

-- publish(topic, payload [, key]): appends payload (any JSON value) to a
-- topic, durably, while this invocation waits. Returns the message's
-- offset and partition. Messages of one key keep their order.
-- (The executor checks the arguments: fewer constants in every state.)
function publish(topic, payload, key)
  local r = wait('publish', PUBLISH, topic, payload, key)
  return r.offset, r.partition
end
