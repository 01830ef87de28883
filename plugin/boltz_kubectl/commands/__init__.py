"""One module per group of subcommands: submit (predict, design), follow (status, logs, wait, results)."""
