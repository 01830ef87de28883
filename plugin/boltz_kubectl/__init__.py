"""kubectl boltz: a kubectl plugin that turns Boltz inputs and BoltzGen design specs into the operator's resources,
follows them and fetches their results. Entry point: `kubectl-boltz` (boltz_kubectl.cli:main)."""
