"""Frame sources: GenICam cameras through harvesters, folder replay, and the synthetic demo part."""
