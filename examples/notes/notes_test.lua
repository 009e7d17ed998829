-- slcli test examples/notes: each test* function is a case, run on the
-- server; invoke() calls the app's actions as the routes and the
-- subscription would.

function test_a_note_goes_on_the_topic()
  local posted = invoke('notes.post', { text = 'buy milk' })
  assert_eq(posted.status, 202)
  assert_eq(posted.json.partition, 0)
  assert(math.type(posted.json.offset) == 'integer', 'no offset')
end

function test_a_text_plain_body_is_a_note()
  local http = { headers = { ['content-type'] = 'text/plain; charset=utf-8' }, body = 'call mum' }
  assert_eq(invoke('notes.post', { http = http }).status, 202)
end

function test_text_is_required()
  assert_error(function() invoke('notes.post', {}) end, 'text is required')
  assert_error(function() invoke('notes.post', { text = '  ' }) end, 'text is required')
end

function test_a_batch_delivered_twice_is_stored_once()
  local first = 1000000000000 -- far past the notes of the topic
  local batch = {
    subscription = 'store-notes', topic = 'notes', partition = 0,
    messages = {
      { partition = 0, offset = first, payload = 'first', attempts = 1 },
      { partition = 0, offset = first + 1, payload = 'second', attempts = 1 },
    },
  }
  invoke('notes.store', batch)
  invoke('notes.store', batch) -- again, as after a crash
  local stored = {}
  for _, note in ipairs(invoke('notes.list', {})) do
    if note.offset >= first then
      stored[#stored + 1] = note
    end
  end
  assert_eq(stored, { { offset = first, text = 'first' }, { offset = first + 1, text = 'second' } })
end
