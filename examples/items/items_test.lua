-- slcli test examples/items: each test* function is a case, run on the
-- server; invoke() calls the app's actions as the routes would.

function test_create_then_get()
  local created = invoke('items.create', { name = 'pen' })
  assert_eq(created.status, 201)
  assert_eq(created.headers.Location, '/items/' .. created.json.id)
  assert_eq(invoke('items.get', { id = created.json.id }), created.json)
end

function test_a_name_is_required()
  assert_error(function() invoke('items.create', {}) end, 'name is required')
end

function test_update_and_delete()
  local id = invoke('items.create', { name = 'cup' }).json.id
  assert_eq(invoke('items.update', { id = id, name = 'mug' }).name, 'mug')
  assert_eq(invoke('items.delete', { id = id }).status, 204)
  assert_eq(invoke('items.get', { id = id }).status, 404)
end

function test_list_filters_by_name()
  invoke('items.create', { name = 'blue pencil' })
  for _, item in ipairs(invoke('items.list', { q = 'pencil' })) do
    assert(item.name:find('pencil', 1, true), item.name .. ' does not match')
  end
end
