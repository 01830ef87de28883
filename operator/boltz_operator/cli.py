"""`boltz-operator run`: the operator, in-cluster or from a laptop's kubeconfig."""

from __future__ import annotations

import argparse
import logging
import os
import socket

import kopf

from boltz_operator.config import OperatorConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="boltz-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch this namespace (repeatable); default: BOLTZ_OPERATOR_NAMESPACES, else all namespaces",
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch all namespaces")
    run.add_argument(
        "--liveness", default="http://0.0.0.0:8080/healthz", help="liveness/readiness endpoint (kopf probes)"
    )
    run.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    import boltz_operator.handlers  # noqa: F401  (registers the handlers with kopf)

    namespaces = [] if args.all_namespaces else (args.namespace or OperatorConfig.from_env().namespaces)
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
        identity=operator_identity(),  # type: ignore[arg-type]
    )


def operator_identity() -> str:  # kopf's Identity, a NewType of str (not exported by kopf)
    """Who this operator is, for kopf: `POD_ID` when set (kopf's own convention), else `<hostname>/<pid>` (in a pod
    the hostname is the pod's name).

    Given explicitly because kopf's fallback asks `getpass.getuser()`, which raises KeyError for a uid without a
    passwd entry (the image's uid 1000; OpenShift's arbitrary uids) when USER and LOGNAME are unset.
    """
    return os.environ.get("POD_ID") or f"boltz-operator@{socket.gethostname()}/{os.getpid()}"


if __name__ == "__main__":
    main()
