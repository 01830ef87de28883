"""Pod annotations that the local cluster's kwok stages read (hack/cluster/manifests/kwok-stages.yaml), so a
test can play a worker's result: the exit code, the termination message, and how long the pod runs."""

EXIT_CODE_ANNOTATION = "kwok.boltz-operator.io/exit-code"
TERMINATION_MESSAGE_ANNOTATION = "kwok.boltz-operator.io/termination-message"
RUN_DURATION_ANNOTATION = "kwok.boltz-operator.io/run-duration"  # a Go duration, e.g. "2s"
REASON_ANNOTATION = "kwok.boltz-operator.io/reason"  # the container's termination reason, e.g. OOMKilled
