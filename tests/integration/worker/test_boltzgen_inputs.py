"""BoltzGen target structures given as S3 objects, end to end against the real S3 server (SeaweedFS): the operator
renders the spec and builds the runs, the worker fetches each object to the `path:` the spec names before boltzgen
starts (design shards and the filter alike), refuses objects over max_bytes before downloading them, and says which
URI is missing. Also the uneven split of numDesigns: the first extra_design_shards shards make one design more."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from boltz_contract import DesignRun, ErrorClass, ExitCode, ResultsTarget, S3Download
from boltz_operator.api.campaign import BoltzGenCampaignSpec
from boltz_operator.api.design_spec import MAX_STRUCTURE_FILE_BYTES
from boltz_operator.builders import campaign as builders
from boltz_operator.builders.results import place_results
from boltz_operator.config import DefaultResultsStore
from boltz_operator.render import render_design_spec
from support.fake_boltzgen import FAKE_BOLTZGEN
from support.worker import invocations

TARGET_CIF = "data_6M1U\n#\nloop_\n_atom_site.group_PDB\nATOM\n#\n"

# Runs the fake boltzgen after doing what the real one does first with a spec: read every file entity's `path:`
# (relative paths from the spec's directory). A missing file fails like boltzgen would; what it read is recorded.
CHECKING_BOLTZGEN = """
import json, os, runpy, sys
from pathlib import Path
import yaml

argv = sys.argv[1:]
if argv and argv[0] == "run":
    spec = Path(argv[1])
    seen = {}
    for entity in yaml.safe_load(spec.read_text())["entities"]:
        if "file" in entity:
            path = Path(entity["file"]["path"])
            path = path if path.is_absolute() else spec.parent / path
            seen[str(path)] = path.read_text() if path.is_file() else None
    with open(os.environ["TARGETS_SEEN"], "a") as f:
        f.write(json.dumps(seen) + "\\n")
    missing = [p for p, text in seen.items() if text is None]
    if missing:
        print(f"FileNotFoundError: [Errno 2] No such file or directory: '{missing[0]}'")
        sys.exit(1)
sys.argv = [__FAKE__, *argv]
runpy.run_path(__FAKE__, run_name="__main__")
"""


@pytest.fixture
def checking_boltzgen(fake_boltzgen, tmp_path, monkeypatch) -> Path:  # noqa: F811
    """The fake boltzgen behind a wrapper that reads the spec's files first; returns where it records them."""
    script = tmp_path / "checking_boltzgen.py"
    script.write_text(CHECKING_BOLTZGEN.replace("__FAKE__", repr(str(FAKE_BOLTZGEN))))
    seen = tmp_path / "targets-seen.jsonl"
    monkeypatch.setenv("BOLTZGEN_EXECUTABLE", shlex.join([sys.executable, str(script)]))
    monkeypatch.setenv("TARGETS_SEEN", str(seen))
    return seen


def seen_by_boltzgen(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def campaign(bucket, key: str = "targets/6m1u.cif", **fields) -> BoltzGenCampaignSpec:
    return BoltzGenCampaignSpec.model_validate({
        "designSpec": {"entities": [
            {"protein": {"ids": ["B"], "sequence": "80..120"}},
            {"file": {"s3": {"uri": f"s3://{bucket.name}/{key}"}, "include": [{"chain": {"id": "A"}}],
                      "bindingTypes": [{"chain": {"id": "A", "binding": "54..56,66"}}]}},
        ]},
        "numDesigns": 8, "shards": 2, "minSuccessfulShardFraction": 1.0,
        "results": {"s3": {"uri": f"s3://{bucket.name}/campaigns", "endpoint": bucket.endpoint_url,
                           "region": bucket.region}},
        **fields,
    })  # fmt: skip


def operator_parts(spec: BoltzGenCampaignSpec, work: Path):
    """What the operator puts in the campaign's ConfigMap, with the pod's /work moved to this test's work dir."""
    doc, files = render_design_spec(spec.design_spec, downloads_dir=str(work / "inputs"))
    results = place_results(spec.results, DefaultResultsStore(), "lab", "pdl1", "u1")
    design = builders.build_design_run(spec, files, results)
    filter_ = builders.build_filter_run(spec, files, results)
    return yaml.safe_dump(doc, sort_keys=False), design, filter_


def run_shard(run_worker, spec_text: str, run: DesignRun, tmp_path, index: int):
    run = run.model_copy(update={"shard_index": index})
    return run_worker("design", run, files={builders.SPEC_FILE: spec_text}, config_dir=tmp_path / f"config-{index}")


def test_an_s3_target_is_fetched_where_the_spec_says_before_boltzgen_reads_it(
    boltzgen_models,
    checking_boltzgen,
    fake_boltzgen,
    s3_env,
    s3_bucket,
    run_worker,
    tmp_path,  # noqa: F811
):
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="targets/6m1u.cif", Body=TARGET_CIF.encode())
    work = tmp_path / "work"
    spec_text, design, filter_ = operator_parts(campaign(s3_bucket), work)
    dest = work / "inputs" / "target-1.cif"
    assert design.downloads == [S3Download(uri=f"s3://{s3_bucket.name}/targets/6m1u.cif", dest=str(dest),
                                           endpoint_url=s3_bucket.endpoint_url, region=s3_bucket.region,
                                           max_bytes=MAX_STRUCTURE_FILE_BYTES)]  # fmt: skip
    assert yaml.safe_load(spec_text)["entities"][1]["file"]["path"] == str(dest)

    for index in range(2):
        outcome = run_shard(
            run_worker, spec_text, design.model_copy(update={"models": boltzgen_models}), tmp_path, index
        )
        assert outcome.exit_code == ExitCode.OK, outcome.summary
        assert outcome.summary["designs_completed"] == 4
    assert seen_by_boltzgen(checking_boltzgen) == [{str(dest): TARGET_CIF}] * 2
    assert dest.read_text() == TARGET_CIF

    # The filter pod starts without it (a fresh emptyDir) and fetches it again: boltzgen re-reads the spec.
    dest.unlink()
    outcome = run_worker(
        "filter",
        filter_.model_copy(update={"models": boltzgen_models}),
        files={builders.SPEC_FILE: spec_text},
        config_dir=tmp_path / "config-filter",
    )
    assert outcome.exit_code == ExitCode.OK, outcome.summary
    assert outcome.summary["shards_merged"] == [0, 1] and outcome.summary["designs_completed"] == 8
    assert seen_by_boltzgen(checking_boltzgen)[-1] == {str(dest): TARGET_CIF}
    assert [c["argv"][0] for c in invocations(fake_boltzgen)] == ["run", "run", "merge", "run"]


def test_without_the_download_boltzgen_would_not_find_the_target(
    boltzgen_models,
    checking_boltzgen,
    s3_env,
    s3_bucket,
    run_worker,
    tmp_path,  # noqa: F811
):
    # The wrapper does fail on a missing file: the test above passes because the worker fetched it.
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="targets/6m1u.cif", Body=TARGET_CIF.encode())
    spec_text, design, _ = operator_parts(campaign(s3_bucket), tmp_path / "work")
    run = design.model_copy(update={"models": boltzgen_models, "downloads": []})
    outcome = run_shard(run_worker, spec_text, run, tmp_path, 0)
    assert outcome.exit_code != ExitCode.OK
    assert seen_by_boltzgen(checking_boltzgen) == [{str(tmp_path / "work" / "inputs" / "target-1.cif"): None}]


def test_an_object_over_max_bytes_is_refused_before_it_is_downloaded(
    boltzgen_models,
    fake_boltzgen,
    s3_env,
    s3_bucket,
    run_worker,
    tmp_path,  # noqa: F811
):
    uri = f"s3://{s3_bucket.name}/targets/huge.cif"
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="targets/huge.cif", Body=b"x" * 2048)
    spec_text, design, _ = operator_parts(campaign(s3_bucket, key="targets/huge.cif"), tmp_path / "work")
    [download] = design.downloads
    run = design.model_copy(
        update={"models": boltzgen_models, "downloads": [download.model_copy(update={"max_bytes": 1024})]}
    )
    outcome = run_shard(run_worker, spec_text, run, tmp_path, 0)
    assert outcome.exit_code == ExitCode.INVALID_INPUT
    assert outcome.summary["error_class"] == ErrorClass.INVALID_INPUT.value
    assert outcome.summary["message"] == f"input file {uri} is 2048 bytes; at most 1024 are allowed"
    assert not Path(download.dest).exists()
    assert invocations(fake_boltzgen) == []
    assert not any("_COMPLETE" in k for k in s3_bucket.keys("campaigns/"))
    # At the limit it is fetched.
    exact = run.model_copy(update={"downloads": [download.model_copy(update={"max_bytes": 2048})]})
    assert run_shard(run_worker, spec_text, exact, tmp_path, 0).exit_code == ExitCode.OK
    assert Path(download.dest).read_bytes() == b"x" * 2048


@pytest.mark.parametrize("max_bytes", [MAX_STRUCTURE_FILE_BYTES, None], ids=["size-checked", "unchecked"])
def test_a_missing_object_is_invalid_input_naming_the_uri(
    max_bytes,
    boltzgen_models,
    fake_boltzgen,
    s3_env,
    s3_bucket,
    run_worker,
    tmp_path,  # noqa: F811
):
    uri = f"s3://{s3_bucket.name}/targets/typo.cif"
    spec_text, design, _ = operator_parts(campaign(s3_bucket, key="targets/typo.cif"), tmp_path / "work")
    [download] = design.downloads
    run = design.model_copy(
        update={"models": boltzgen_models, "downloads": [download.model_copy(update={"max_bytes": max_bytes})]}
    )
    outcome = run_shard(run_worker, spec_text, run, tmp_path, 0)
    assert outcome.exit_code == ExitCode.INVALID_INPUT
    assert outcome.summary["error_class"] == ErrorClass.INVALID_INPUT.value
    assert outcome.summary["message"].startswith(f"input file {uri} does not exist")
    assert invocations(fake_boltzgen) == [] and not Path(download.dest).exists()


def test_a_missing_bucket_is_invalid_input_naming_the_uri(
    boltzgen_models,
    fake_boltzgen,
    s3_env,
    s3_bucket,
    run_worker,
    tmp_path,  # noqa: F811
):
    spec_text, design, _ = operator_parts(campaign(s3_bucket), tmp_path / "work")
    [download] = design.downloads
    uri = "s3://no-such-bucket-4a7c/targets/6m1u.cif"
    run = design.model_copy(update={"models": boltzgen_models, "downloads": [download.model_copy(update={"uri": uri})]})
    outcome = run_shard(run_worker, spec_text, run, tmp_path, 0)
    assert outcome.exit_code == ExitCode.INVALID_INPUT and uri in outcome.summary["message"]
    assert invocations(fake_boltzgen) == []


def test_the_first_extra_design_shards_make_one_design_more(
    boltzgen_models,
    fake_boltzgen,
    s3_env,
    s3_bucket,
    run_worker,
    tmp_path,  # noqa: F811
):
    results = ResultsTarget(uri="pvc://results/lab/pdl1/u1", local_dir=str(tmp_path / "results"))
    run = DesignRun(spec_file="binder.yaml", num_designs=4, extra_design_shards=1, results=results,
                    models=boltzgen_models)  # fmt: skip
    spec_text = yaml.safe_dump({"entities": [{"protein": {"id": "B", "sequence": "80..120"}}]})
    made = {}
    for index in (0, 1):
        outcome = run_worker(
            "design",
            run.model_copy(update={"shard_index": index}),
            files={"binder.yaml": spec_text},
            config_dir=tmp_path / f"config-{index}",
        )
        assert outcome.exit_code == ExitCode.OK, outcome.summary
        made[index] = outcome.summary["designs_completed"]
    asked = [c["argv"][c["argv"].index("--num_designs") + 1] for c in invocations(fake_boltzgen)]
    assert asked == ["5", "4"] and made == {0: 5, 1: 4}
    for index, designs in ((0, 5), (1, 4)):
        marker = json.loads((tmp_path / "results" / "shards" / str(index) / "_COMPLETE").read_text())
        assert (marker["num_designs"], marker["designs"]) == (designs, designs)


def test_the_operators_uneven_split_adds_up_in_the_workers_shards(
    boltzgen_models,
    fake_boltzgen,
    s3_env,
    s3_bucket,
    run_worker,
    tmp_path,  # noqa: F811
):
    spec = BoltzGenCampaignSpec.model_validate({
        "designSpec": {"entities": [{"protein": {"ids": ["B"], "sequence": "20"}}]}, "numDesigns": 11, "shards": 3,
        "results": {"pvc": {"claimName": "results"}},
    })  # fmt: skip
    doc, files = render_design_spec(spec.design_spec)
    placement = place_results(spec.results, DefaultResultsStore(), "lab", "pdl1", "u1")
    run = builders.build_design_run(spec, files, placement)
    run = run.model_copy(
        update={
            "models": boltzgen_models,
            "results": ResultsTarget(uri=placement.target.uri, local_dir=str(tmp_path / "results")),
        }
    )
    spec_text = yaml.safe_dump(doc, sort_keys=False)
    total = 0
    for index in range(3):
        outcome = run_shard(run_worker, spec_text, run, tmp_path, index)
        assert outcome.exit_code == ExitCode.OK, outcome.summary
        total += outcome.summary["designs_completed"]
    asked = [int(c["argv"][c["argv"].index("--num_designs") + 1]) for c in invocations(fake_boltzgen)]
    assert asked == [4, 4, 3] and total == 11


def test_denied_access_to_a_target_is_invalid_input_that_says_to_check_credentials(
    boltzgen_models,
    fake_boltzgen,
    s3_env,
    s3_bucket,
    run_worker,
    tmp_path,
    monkeypatch,  # noqa: F811
):
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="targets/6m1u.cif", Body=TARGET_CIF.encode())
    spec_text, design, _ = operator_parts(campaign(s3_bucket), tmp_path / "work")
    results = ResultsTarget(uri="pvc://results/lab/pdl1/u1", local_dir=str(tmp_path / "results"))  # not S3
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    outcome = run_shard(
        run_worker, spec_text, design.model_copy(update={"models": boltzgen_models, "results": results}), tmp_path, 0
    )
    assert outcome.exit_code == ExitCode.INVALID_INPUT
    message = outcome.summary["message"]
    assert message.startswith(f"access to input file s3://{s3_bucket.name}/targets/6m1u.cif was denied")
    assert "check credentials" in message and invocations(fake_boltzgen) == []
