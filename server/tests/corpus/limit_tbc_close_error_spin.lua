-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: __close handlers that run while an error unwinds through pcall are under the hook too, and the pcall wrapper re-raises the abort
function main()
  while true do
    pcall(function()
      local x <close> = setmetatable({}, {__close = function() while true do end end})
      error('unwind')
    end)
  end
end
