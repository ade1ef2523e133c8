"""`make verify` (tools/verify.py): it names every output that is not what the committed code makes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tools.verify import (
    PLATFORM_RECORD,
    check_lock_is_current,
    explain_platform,
    file_differences,
    lock_differences,
    lock_digest,
    stages_up_to,
    stale_entries,
    unclaimed_files,
    unrun_stages,
    verify,
)
from tools.workspace import PROJECT_ROOT, Machine, commit, dvc, make_workspace, run, set_params, stages_run

OUTPUTS = {"data/raw", "data/prepared", "models/model.keras", "metrics/evaluate.json", "metrics/training"}
COMMITTED = {"metrics/evaluate.json", "metrics/training"}
# Another machine, as far as one machine can play it: oneDNN told to use its lowest instruction set (SSE4.1
# instead of this CPU's best), the thread variables a user might set, and a single CPU. What each varies:
# the ISA changes the bytes unless the project overrides it (compute.portable_kernels; the control below
# shows it does change them otherwise); the thread variables and the CPU set are what compute.threads pins
# against (the small profile runs one thread, so they vary the environment, not the thread count).
ANOTHER_MACHINE = Machine(
    environment=(("ONEDNN_MAX_CPU_ISA", "SSE41"), ("OMP_NUM_THREADS", "1"), ("TF_NUM_INTRAOP_THREADS", "1")),
    cpus=frozenset({0}),
)


def test_absent_cached_data_is_not_staleness() -> None:
    status = {
        "preprocess": [{"changed deps": {"data/raw": "deleted"}}, {"changed outs": {"data/prepared": "not in cache"}}],
        "train": [{"changed deps": {"data/prepared/train_images.npy": "deleted"}}],
    }
    assert stale_entries(status, OUTPUTS, COMMITTED) == []


def test_changed_code_params_and_metrics_are_named() -> None:
    status = {
        "train": [{"changed deps": {"stages/train.py": "modified", "params.yaml": {"train.epochs": "modified"}}}],
        "evaluate": [{"changed outs": {"metrics/evaluate.json": "modified"}}],
        "predict": ["changed command"],
    }
    assert stale_entries(status, OUTPUTS, COMMITTED) == [
        "stage 'train': dependency stages/train.py modified since dvc.lock",
        "stage 'train': param train.epochs modified since dvc.lock",
        "stage 'evaluate': output metrics/evaluate.json modified: it is not what dvc.lock records",
        "stage 'predict': changed command since dvc.lock",
    ]


def test_a_deleted_code_file_is_staleness() -> None:
    status = {"fetch": [{"changed deps": {"mnist_dvc/formats/idx.py": "deleted"}}]}
    assert stale_entries(status, OUTPUTS, COMMITTED) == [
        "stage 'fetch': dependency mnist_dvc/formats/idx.py deleted since dvc.lock"
    ]


def test_a_deleted_committed_metrics_file_is_named() -> None:
    # git holds metrics: on a fresh clone they are there, so an absent one was deleted.
    status = {"evaluate": [{"changed outs": {"metrics/evaluate.json": "deleted"}}]}
    assert stale_entries(status, OUTPUTS, COMMITTED) == [
        "stage 'evaluate': output metrics/evaluate.json deleted: git holds it and dvc.lock records it"
    ]


def test_a_committed_file_no_stage_writes_is_named() -> None:
    tracked = [
        "README.md",
        "metrics/evaluate.json",
        "metrics/training/plots/metrics/train/loss.tsv",
        "metrics/old_chart.png",
    ]
    assert unclaimed_files(tracked, OUTPUTS) == [
        "metrics/old_chart.png: git holds it, but no stage of dvc.yaml writes it"
    ]


def test_lock_differences_name_stage_and_output() -> None:
    first = {"stages": {"train": {"outs": [{"path": "models/model.keras", "md5": "aa"}]}}}
    second = {"stages": {"train": {"outs": [{"path": "models/model.keras", "md5": "bb"}]}}}
    assert lock_differences(first, first) == []
    assert lock_differences(first, second) == ["stage 'train': models/model.keras (dvc.lock aa, this run bb)"]


def test_missing_hashes_outputs_and_stages_are_differences() -> None:
    # Two locks that both lack a hash agree on nothing: an output without a hash proves nothing.
    no_hash = {"stages": {"train": {"outs": [{"path": "models/model.keras"}]}}}
    assert lock_differences(no_hash, no_hash) == [
        "stage 'train': models/model.keras (dvc.lock no hash, this run no hash)"
    ]
    one = {"stages": {"train": {"outs": [{"path": "models/model.keras", "md5": "aa"}]}}}
    two = {
        "stages": {
            "train": {
                "outs": [{"path": "models/model.keras", "md5": "aa"}, {"path": "metrics/train.json", "md5": "cc"}]
            },
            "evaluate": {"outs": []},
        }
    }
    assert lock_differences(one, two) == [
        "stage 'evaluate': only in this run",
        "stage 'train': metrics/train.json (dvc.lock no such output, this run cc)",
    ]


def test_stages_restored_instead_of_run_are_named() -> None:
    output = (
        "Running stage 'fetch':\nStage 'preprocess' is cached - skipping run, checking out outputs\n"
        "Running stage 'train':\nRunning stage 'evaluate':\nRunning stage 'predict':\nRunning stage 'export':\n"
    )
    assert unrun_stages(output) == ["stage 'preprocess' was not run (restored or skipped)"]


def test_file_differences_name_modified_added_and_missing_files(tmp_path: Path) -> None:
    committed, rebuilt = tmp_path / "committed", tmp_path / "rebuilt"
    for root, files in (
        (committed, {"a.tsv": "1", "b.tsv": "2", "added.tsv": "x"}),
        (rebuilt, {"a.tsv": "1", "b.tsv": "3", "new.tsv": "y"}),
    ):
        (root / "metrics/training").mkdir(parents=True)
        for name, text in files.items():
            (root / "metrics/training" / name).write_text(text)
    assert file_differences(committed, rebuilt, {"metrics/training"}) == [
        "metrics/training/added.tsv: committed, but the run did not write it",
        "metrics/training/b.tsv: the run wrote other bytes than the committed file",
        "metrics/training/new.tsv: the run wrote it, but it is not committed",
    ]


def test_the_platform_that_made_the_lock_is_compared_with_this_run(tmp_path: Path) -> None:
    facts = {
        "kernels": "AVX2",
        "kernel_cap": "AVX2",
        "threads": 2,
        "cpu": "AMD EPYC",
        "cpu_best_isa": "AVX2",
        "available_cpus": 2,
        "tensorflow": "2.21.0",
    }
    (tmp_path / "dvc.lock").write_text("stages: {}\n")
    assert "platform that made it is unknown" in explain_platform(tmp_path, facts)[0]
    record = {"dvc.lock sha256": lock_digest(tmp_path / "dvc.lock"), "platform": facts}
    (tmp_path / PLATFORM_RECORD).write_text(json.dumps(record))
    lines = explain_platform(
        tmp_path,
        {
            **facts,
            "kernels": "AVX512_CORE",
            "cpu_best_isa": "AVX512_CORE",
            "kernel_cap": "none",
            "threads": 16,
            "available_cpus": 16,
        },
    )
    assert lines[0] == "dvc.lock was made with: AVX2 kernels (cap AVX2, CPU best AVX2), 2 threads on 2 CPUs: AMD EPYC"
    assert lines[1].startswith("this run: AVX512_CORE kernels (cap none, CPU best AVX512_CORE), 16 threads")
    assert lines[2:4] == ["differs: kernels: 'AVX2' then, 'AVX512_CORE' now", "differs: threads: 2 then, 16 now"]
    assert explain_platform(tmp_path, facts)[2] == (
        "the platform facts recorded are the same: the difference comes from something they do not cover"
    )
    assert explain_platform(tmp_path, facts, checkout_changed=True)[2].startswith(
        "the checkout is not what dvc.lock was made from"
    )


def fresh_clone(root: Path) -> Path:
    """The committed pipeline with its dvc.lock and the metrics git holds, as a fresh clone has them."""
    make_workspace(root)
    shutil.copy(PROJECT_ROOT / "dvc.lock", root / "dvc.lock")
    shutil.copytree(PROJECT_ROOT / "metrics", root / "metrics")
    commit(root, "lock and metrics")
    return root


@pytest.mark.slow
def test_the_committed_lock_matches_the_committed_code(tmp_path: Path) -> None:
    assert check_lock_is_current(fresh_clone(tmp_path)) == []


@pytest.mark.slow
def test_a_stale_lock_and_edited_metrics_are_named(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    with (clone / "stages/predict.py").open("a") as file:
        file.write("# changed without rerunning the pipeline\n")
    set_params(clone, {"evaluate": {"batch_size": 512}})
    (clone / "metrics/confusion.csv").unlink()
    (clone / "metrics/old_chart.png").write_bytes(b"\x89PNG")
    run(["git", "add", "-A"], clone)
    assert check_lock_is_current(clone) == [
        "stage 'evaluate': param evaluate.batch_size modified since dvc.lock",
        "stage 'evaluate': output metrics/confusion.csv deleted: git holds it and dvc.lock records it",
        "stage 'predict': dependency stages/predict.py modified since dvc.lock",
        "metrics/old_chart.png: git holds it, but no stage of dvc.yaml writes it",
    ]


@pytest.mark.slow
def test_verify_passes_on_another_machine_and_names_what_a_silent_change_altered(
    small_pipeline: Path, tmp_path: Path
) -> None:
    # A behaviour change recorded with `dvc commit` (the lock now matches the code, but its outputs are
    # the old ones): only a run from scratch can tell. That run is told to use another instruction set, on
    # one CPU, so one run shows both: with portable kernels the 16 outputs the change leaves alone come out
    # byte-identical to the committed lock (made here with this CPU's kernels capped at AVX2), and the one
    # it alters is the only difference named.
    changed = tmp_path / "changed"
    shutil.copytree(small_pipeline, changed)
    predict = changed / "stages/predict.py"
    predict.write_text(predict.read_text().replace('"ImageId,Label\\n"', '"ImageId,label\\n"'))
    dvc(changed, "commit", "--force")
    commit(changed, "a behaviour change with the old outputs")
    assert check_lock_is_current(changed) == []
    problems = verify(changed, tmp_path / "rebuild-changed", ANOTHER_MACHINE)
    assert len(problems) == 1 and problems[0].startswith(
        "stage 'predict': data/predictions/submission.csv (dvc.lock "
    ), problems
    recorded = {
        out["path"]: out["md5"]
        for out in yaml.safe_load((changed / "dvc.lock").read_text())["stages"]["predict"]["outs"]
    }
    assert recorded["data/predictions/submission.csv"] in problems[0]


@pytest.mark.slow
def test_without_portable_kernels_another_instruction_set_is_reported(small_pipeline: Path, tmp_path: Path) -> None:
    """The control of the test above: with compute.portable_kernels false, oneDNN follows ONEDNN_MAX_CPU_ISA, so
    the same run on SSE4.1 kernels trains other bytes than this CPU's kernels did, and verify names them. Only
    the stages up to train run (`--until train`): the model is where the kernels' bytes first show."""
    repo = Path(shutil.copytree(small_pipeline, tmp_path / "repo", symlinks=True))
    set_params(repo, {"compute": {"portable_kernels": False}})
    assert stages_run(dvc(repo, "repro", "train")) == ["train"]
    commit(repo, "the lock of this CPU's own kernels")
    problems = verify(repo, tmp_path / "rebuild", ANOTHER_MACHINE, until="train")
    trained = [problem for problem in problems if problem.startswith("stage 'train': models/model.keras (dvc.lock ")]
    assert trained, problems
    assert not any(problem.startswith(("stage 'fetch'", "stage 'preprocess'")) for problem in problems), problems


def test_until_a_stage_runs_it_and_the_stages_it_depends_on() -> None:
    assert stages_up_to(PROJECT_ROOT, "fetch") == {"fetch"}
    assert stages_up_to(PROJECT_ROOT, "train") == {"fetch", "preprocess", "train"}
    assert stages_up_to(PROJECT_ROOT, "predict") == {"fetch", "preprocess", "train", "predict"}
    assert stages_up_to(PROJECT_ROOT, "export") == {"fetch", "preprocess", "train", "export"}
