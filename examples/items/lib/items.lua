-- A library action (lib.items): returns a table for require() and defines
-- no main. The items live in the kv plugin, under keys "items/<id>".
local M = {}

function M.get(id)
  return call('kv', 'get', { key = 'items/' .. id })
end

function M.put(item)
  call('kv', 'put', { key = 'items/' .. item.id, value = item })
  return item
end

function M.delete(id)
  return call('kv', 'delete', { key = 'items/' .. id })
end

function M.list()
  local out = json.array()
  for _, entry in ipairs(call('kv', 'list', { prefix = 'items/', limit = 1000 })) do
    out[#out + 1] = entry.value
  end
  return out
end

function M.next_id()
  return tostring(call('kv', 'incr', { key = 'counters/items' }))
end

function M.not_found(id)
  return http.response { status = 404, body = { error = 'no item ' .. id } }
end

return M
