-- In-process comparator for the criterion benchmark: LuaJIT (the Lua of
-- nginx's lua module) with cjson doing the same work per iteration as
-- `warm_invoke/*`: decode the JSON body, main(args), encode the result.
-- Usage: luajit inproc.lua HELLO_LUA [ITERATIONS]. Prints ns per iteration.
local cjson = require "cjson"
local path, n = arg[1], tonumber(arg[2] or "2000000")
local chunk = assert(loadfile(path))
local env = setmetatable({}, { __index = _G })
setfenv(chunk, env)
chunk()
local main = env.main
local body = '{"name":"x"}'
local out
for _ = 1, math.floor(n / 10) do out = cjson.encode(main(cjson.decode(body))) end -- warm-up
local t0 = os.clock()
for _ = 1, n do out = cjson.encode(main(cjson.decode(body))) end
local t1 = os.clock()
assert(out == '"Hello x"', out)
print(string.format("%.1f", (t1 - t0) * 1e9 / n))
