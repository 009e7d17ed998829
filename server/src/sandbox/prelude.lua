-- The sandbox prelude: runs once in every new Lua state, before user code.
-- It receives trusted Rust functions as arguments and closes over the raw
-- library functions it wraps, so user code can never reach them.
local take_preempt, PREEMPT, guard, emit, encode, decode, null, ERR, CALL = ...

local raw_pcall, raw_xpcall, raw_load, raw_setmetatable = pcall, xpcall, load, setmetatable
local raw_resume, raw_yield, isyieldable, co_create = coroutine.resume, coroutine.yield, coroutine.isyieldable, coroutine.create
local pack, unpack, concat, select, tostring, type, rawget, error =
  table.pack, table.unpack, table.concat, select, tostring, type, rawget, error

-- After a limit is hit, `guard` raises again wherever an error was caught.
local function finish(...)
  guard()
  return ...
end

function pcall(...)
  return finish(raw_pcall(...))
end

function xpcall(f, handler, ...)
  return finish(raw_xpcall(f, function(...)
    guard()
    return handler(...)
  end, ...))
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
  if not isyieldable() then
    error('call() cannot wait here (inside a metamethod or a library callback)', 2)
  end
  local ok, result = raw_yield(CALL, plugin, action, payload)
  guard()
  if ok then
    return result
  end
  error(result, 2)
end

-- Text chunks only: binary chunks could break the VM.
function load(chunk, name, mode, ...)
  if select('#', ...) > 0 then
    return raw_load(chunk, name, 't', (...))
  end
  return raw_load(chunk, name, 't')
end

-- Finalizers run with hooks off, so they could outlive every limit.
function setmetatable(t, mt)
  if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then
    error('finalizers (__gc) are not available in the sandbox', 2)
  end
  return raw_setmetatable(t, mt)
end

function print(...)
  local n = select('#', ...)
  local parts = {}
  for i = 1, n do
    parts[i] = tostring((select(i, ...)))
  end
  emit(concat(parts, '\t'))
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

json = { null = null, encode = soft(encode), decode = soft(decode) }

local raw_gmatch = string.gmatch
string.find = soft(string.find)
string.match = soft(string.match)
string.gsub = soft(string.gsub)
string.gmatch = function(...)
  return soft(raise_err(raw_gmatch(...)))
end

os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }
string.dump = nil
getmetatable('').__metatable = false
dofile, loadfile, collectgarbage, warn, require, module = nil, nil, nil, nil, nil, nil
