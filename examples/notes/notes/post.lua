-- POST /notes: a note, as a text/plain body or as {"text": ...} (JSON or a
-- form), goes on the topic `notes`; 202 with its place in the topic. The
-- subscription store-notes (notes/store.lua) stores it moments later.

local function text_of(args)
  if args.text ~= nil then
    return args.text
  end
  local http = args.http or {}
  local content_type = (http.headers or {})['content-type'] or ''
  if content_type:lower():find('^text/plain') then
    return http.body
  end
end

function main(args)
  local text = text_of(args)
  if type(text) ~= 'string' or not text:find('%S') then
    return nil, 'text is required'
  end
  local offset, partition = publish('notes', text)
  return http.response {
    status = 202,
    body = { partition = partition, offset = offset },
  }
end
