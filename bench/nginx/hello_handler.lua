-- The nginx-lua comparator: the same work as SL's hello action behind
-- POST /actions/hello/block. Read the POSTed body, decode the JSON, call
-- main(args) from bench/hello.lua (loaded once per worker into its own
-- environment, like an SL warm instance), encode the result as JSON.
local cjson = require "cjson.safe"

local M = {}

local main
do
  local path = ngx.config.prefix() .. "hello.lua"
  local chunk = assert(loadfile(path))
  local env = setmetatable({}, { __index = _G })
  setfenv(chunk, env)
  chunk()
  main = assert(env.main, "hello.lua defines no main")
end

function M.handle()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  local args
  if body == nil or body == "" then
    args = {}
  else
    local err
    args, err = cjson.decode(body)
    if type(args) ~= "table" then
      ngx.status = 400
      ngx.header.content_type = "application/json"
      ngx.say(cjson.encode({ error = { kind = "bad_request", message = tostring(err) } }))
      return
    end
  end
  local ok, result = pcall(main, args)
  if not ok then
    ngx.status = 500
    ngx.header.content_type = "application/json"
    ngx.say(cjson.encode({ error = { kind = "runtime", message = tostring(result) } }))
    return
  end
  local out = cjson.encode(result)
  ngx.header.content_type = "application/json"
  ngx.header.content_length = #out
  ngx.print(out)
end

return M
