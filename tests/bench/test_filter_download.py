"""What the campaign filter Job downloads: every file of every shard (before issue 15) vs what boltzgen's merge and
filtering read (filter.download_shard), from the real S3 server (SeaweedFS) on loopback, over a 20-shard fixture.

The fixture is shard folders laid out as boltzgen 0.3.2's design..analysis steps write them, made by the boltzgen
venv (tests/integration/fidelity/boltzgen_side.py `shards`): per design the structures of intermediate_designs/ and
intermediate_designs_inverse_folded/ (design, native, refold_cif, refold_design_cif: each the 154 kB mmCIF of
tests/fixtures/structures/3ch4.cif, a 202-residue target), metadata .npz, fold_out_npz/ and fold_out_design_npz/ with
the arrays boltzgen's folding writer saves (const.eval_keys) for 300 tokens and 2,400 atoms, metrics_tmp/ .npz; per
shard the analysis tables and step configs. Sizes are those stand-ins' (a real design's files differ with its
target and length): the figures compare the two download sets over the same objects, on one machine, one run.

Prints files, bytes and seconds of both and asserts only that the new set is a subset that is smaller.

    .venv/bin/pytest tests/bench/test_filter_download.py -s -p no:cacheprovider
    BOLTZ_BENCH_FILTER_SHARDS=20 BOLTZ_BENCH_FILTER_DESIGNS=100 (the defaults)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from boltz_contract import SHARD_COMPLETE_MARKER, ResultsTarget, S3Target
from boltz_worker.boltzgen_runs.boltzgen_store import StoreReader
from boltz_worker.boltzgen_runs.design import shard_rel
from boltz_worker.boltzgen_runs.filter import download_shard

REPO = Path(__file__).resolve().parents[2]
FIDELITY = REPO / "tests" / "integration" / "fidelity"
sys.path.insert(0, str(FIDELITY))
from support.fidelity import BOLTZGEN_VERSION, CACHE_HOME, TARGET  # noqa: E402

SHARDS = int(os.environ.get("BOLTZ_BENCH_FILTER_SHARDS", "20"))
DESIGNS = int(os.environ.get("BOLTZ_BENCH_FILTER_DESIGNS", "100"))
PREFIX = "ns/camp/u1"


def generate(out: Path) -> None:
    python = CACHE_HOME / f"boltzgen-venv-{BOLTZGEN_VERSION}" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no boltzgen venv at {python.parent.parent} (make boltzgen-venv): it writes the fixture")
    options = {"shards": SHARDS, "backbones": DESIGNS, "sequences": 1, "structure": str(TARGET), "tokens": 300,
               "atoms": 2400, "length": 100}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(FIDELITY), "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([str(python), str(FIDELITY / "boltzgen_side.py"), "shards", str(out), json.dumps(options)],
                   check=True, capture_output=True, env=env, cwd=FIDELITY, timeout=1800)  # fmt: skip


def upload(bucket, root: Path) -> None:
    client = bucket.client()
    files = [p for p in root.rglob("*") if p.is_file()]

    def put(path: Path) -> None:
        client.upload_file(str(path), bucket.name, f"{PREFIX}/shards/{path.relative_to(root).as_posix()}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, files))
    for index in range(SHARDS):
        client.put_object(Bucket=bucket.name, Key=f"{PREFIX}/{shard_rel(index)}/{SHARD_COMPLETE_MARKER}", Body=b"{}")


def tree(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_filter_downloads_only_what_merge_and_filtering_read(s3_bucket, s3_env, tmp_path):
    fixture = tmp_path / "fixture"
    generate(fixture)
    upload(s3_bucket, fixture)
    target = ResultsTarget(
        uri=f"s3://{s3_bucket.name}/{PREFIX}",
        s3=S3Target(bucket=s3_bucket.name, prefix=PREFIX, endpoint_url=s3_bucket.endpoint_url, region=s3_bucket.region),
    )
    reader = StoreReader(target)

    before_dir, after_dir = tmp_path / "before", tmp_path / "after"
    started = time.monotonic()
    for index in range(SHARDS):  # what filter_designs did before: the whole shard but its marker
        reader.download(shard_rel(index), before_dir / str(index), exclude=(SHARD_COMPLETE_MARKER,))
    before_s = time.monotonic() - started
    started = time.monotonic()
    for index in range(SHARDS):
        download_shard(reader, index, after_dir / str(index), skip_inverse_folding=False)
    after_s = time.monotonic() - started

    before, after = tree(before_dir), tree(after_dir)
    assert set(after) < set(before) and all(after[k] == before[k] for k in after)
    b_bytes, a_bytes = sum(before.values()), sum(after.values())
    print(f"\nfilter download, {SHARDS} shards x {DESIGNS} designs from SeaweedFS on loopback:")
    print(f"  before (whole shards): {len(before):6d} files {b_bytes / 1e6:9.1f} MB {before_s:7.1f} s")
    print(f"  after (merge+filter) : {len(after):6d} files {a_bytes / 1e6:9.1f} MB {after_s:7.1f} s")
    print(
        f"  after/before         : {len(after) / len(before):6.1%} files {a_bytes / b_bytes:9.1%} bytes "
        f"{after_s / before_s:6.1%} time"
    )
