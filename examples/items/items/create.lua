-- POST /items with {"name": ...} (JSON or a form): 201 with a Location.
local items = require('lib.items')

function main(args)
  if type(args.name) ~= 'string' or args.name == '' then
    return nil, 'name is required'
  end
  local item = items.put({ id = items.next_id(), name = args.name })
  return http.response {
    status = 201,
    headers = { Location = '/items/' .. item.id },
    body = item,
  }
end
