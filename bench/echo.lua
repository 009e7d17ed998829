function main(args)
  return call('skeleton', 'echo', args)
end
