-- PUT /items/:id with {"name": ...}
local items = require('lib.items')

function main(args)
  local item = items.get(args.id)
  if item == nil then
    return items.not_found(args.id)
  end
  if type(args.name) ~= 'string' or args.name == '' then
    return nil, 'name is required'
  end
  item.name = args.name
  return items.put(item)
end
