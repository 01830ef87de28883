"""Where results go and inputs come from: the results store (S3 or a PVC path), S3 helpers, S3 input downloads."""
