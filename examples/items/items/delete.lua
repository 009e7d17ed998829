-- DELETE /items/:id: 204, or 404 if there is no such item.
local items = require('lib.items')

function main(args)
  if not items.delete(args.id) then
    return items.not_found(args.id)
  end
  return http.response(204)
end
