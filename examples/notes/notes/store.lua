-- The sink of the subscription store-notes: it gets the topic's messages in
-- batches, in order, and stores each note in kv under its place in the
-- topic, padded so that kv's sorted keys keep the topic's order. Delivery is
-- at least once: a batch delivered again writes the same keys, one copy each.

function main(batch)
  for _, m in ipairs(batch.messages) do
    call('kv', 'put', {
      key = ('notes/%03d/%019d'):format(m.partition, m.offset),
      value = { offset = m.offset, text = m.payload },
    })
  end
  -- Returning acks the batch; an error (a failed put) has it delivered again.
end
