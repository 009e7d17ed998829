-- Scenario 11 (#18): the subscriber of the delivery-latency run. For each
-- batch it publishes one message to topic "seen" holding, for each
-- message of the batch, {partition, offset, the client's send time
-- (payload.t, Unix ms), published (Unix ms)}. The driver reads "seen"
-- back: the `published` the server stamps on that message is when the
-- batch had been delivered and run.
function main(batch)
  local seen = {}
  for i, m in ipairs(batch.messages) do
    seen[i] = { m.partition, m.offset, m.payload.t, m.published }
  end
  publish("seen", seen)
end
