"""The real `boltzgen` command line on a machine without CUDA, for `boltzgen merge` and
`boltzgen run ... --steps filtering` as the filter Job runs them (run by the boltzgen venv's python; the tests point
$BOLTZGEN_EXECUTABLE at it).

boltzgen 0.3.2 touches CUDA in one place before filtering: BinderDesignPipeline.__init__ reads
torch.cuda.get_device_capability() to decide --use_kernels auto (cli/boltzgen.py), for every step, configured or
not; the worker passes --devices 1, so torch.cuda.device_count() is never asked. Here that capability reads (0, 0)
(kernels off). Everything else is boltzgen's own code: configure (the spec parsed and checked against the
molecules, every model path checked to exist, the step configs written), then the filtering step, run as boltzgen
runs it: a subprocess of its resources/main.py instantiating Filter from the written config, on the CPU. `merge`
never touches torch.cuda.
"""

import sys

import torch

torch.cuda.get_device_capability = lambda device=None: (0, 0)

from boltzgen.cli.boltzgen import main  # noqa: E402  (after the patch: the CLI module reads nothing at import)

if __name__ == "__main__":
    sys.argv[0] = "boltzgen"
    sys.exit(main())
