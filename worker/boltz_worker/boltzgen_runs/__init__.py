"""BoltzGen runs: `boltz-worker design` (one campaign shard) and `boltz-worker filter` (merge and filtering), the
`boltzgen` command lines, and reading shards back from the results store."""
