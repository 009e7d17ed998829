-- GET /items/:id
local items = require('lib.items')

function main(args)
  return items.get(args.id) or items.not_found(args.id)
end
