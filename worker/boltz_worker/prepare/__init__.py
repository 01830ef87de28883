"""`boltz-worker prepare`: the CPU step before a prediction's GPU Job (issue 11).

Modules by concern: msa_files (the given MSA files checked as boltz reads them), msa_request (which chains need
the server, the staged input), msa_store (the MSA store: a PVC directory or an S3 prefix), server_requests (the
bounded, counted HTTP client handed to boltz's MSA client), boltz_child (what runs where boltz is importable:
parsing, MSAs, input processing), boltz_errors (boltz's exceptions made actionable), prepare (the command).

Only boltz_child, boltz_errors and server_requests run in the process that imports boltz; they use the standard
library, requests and boltz only (no pydantic, no boto3), so a python with boltz alone can run them.
"""
