-- GET /items[?q=text]: every item, or those whose name contains q.
local items = require('lib.items')

function main(args)
  local out = json.array() -- [] when nothing matches
  for _, item in ipairs(items.list()) do
    if args.q == nil or item.name:find(args.q, 1, true) then
      out[#out + 1] = item
    end
  end
  return out
end
