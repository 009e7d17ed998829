-- GET /notes: the stored notes in the order they were posted (the first 1000).

function main()
  local notes = json.array() -- [] when there are none
  for _, entry in ipairs(call('kv', 'list', { prefix = 'notes/', limit = 1000 })) do
    notes[#notes + 1] = entry.value
  end
  return notes
end
