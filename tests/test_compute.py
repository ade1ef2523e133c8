"""Portable compute: the same bytes whatever the CPU's instruction set or the number of CPUs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mnist_dvc.errors import ParamsError
from mnist_dvc.params.compute import ComputeParams
from mnist_dvc.reproducible_compute import (
    ISA_NAMES,
    ISA_VARIABLE,
    apply_isa_cap,
    best_isa,
    check_onednn_is_on,
    cpu_flags,
    fact_differences,
    kernel_isa,
)
from tests.conftest import PROJECT_ROOT, synthetic_digits
from tools.workspace import Machine, run

HASWELL_FLAGS = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx fma avx2"
SAPPHIRE_RAPIDS_FLAGS = (
    HASWELL_FLAGS + " avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16 avx_vnni"
)
THIS_CPU = cpu_flags(Path("/proc/cpuinfo").read_text()) if Path("/proc/cpuinfo").exists() else frozenset()


def test_cpu_flags_are_read_from_cpuinfo() -> None:
    cpuinfo = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse4_1 avx\n\nprocessor\t: 1\nflags\t: x\n"
    assert cpu_flags(cpuinfo) == {"fpu", "sse4_1", "avx"}
    assert cpu_flags("") == frozenset()


@pytest.mark.parametrize(
    ("flags", "best"),
    [
        ("fpu sse sse2", None),
        ("sse4_1", "SSE41"),
        ("sse4_1 avx", "AVX"),
        (HASWELL_FLAGS, "AVX2"),
        (HASWELL_FLAGS + " avx512f avx512dq avx512bw avx512vl", "AVX512_CORE"),
        (SAPPHIRE_RAPIDS_FLAGS, "AVX512_CORE_AMX"),
    ],
)
def test_the_best_instruction_set_of_a_cpu(flags: str, best: str | None) -> None:
    assert best_isa(frozenset(flags.split())) == best


def test_the_portable_cap_lowers_an_avx512_cpu_to_avx2_and_leaves_a_lower_one_alone() -> None:
    assert kernel_isa(frozenset(SAPPHIRE_RAPIDS_FLAGS.split()), "AVX2") == "AVX2"
    assert kernel_isa(frozenset(SAPPHIRE_RAPIDS_FLAGS.split()), None) == "AVX512_CORE_AMX"
    assert kernel_isa(frozenset({"sse4_1", "avx"}), "AVX2") == "AVX"


def test_portable_kernels_override_the_environment_and_non_portable_ones_do_not() -> None:
    environment = {ISA_VARIABLE: "AVX512_CORE_AMX", "ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}
    assert apply_isa_cap(ComputeParams(portable_kernels=True, threads=2), environment) == "AVX2"
    assert environment == {ISA_VARIABLE: "AVX2", "ONEDNN_DEFAULT_FPMATH_MODE": "STRICT"}
    environment = {ISA_VARIABLE: "SSE41"}
    assert apply_isa_cap(ComputeParams(portable_kernels=False, threads=2), environment) == "SSE41"
    assert environment == {ISA_VARIABLE: "SSE41"}
    assert apply_isa_cap(ComputeParams(portable_kernels=False, threads=2), {}) is None


def test_portable_kernels_refuse_an_environment_without_onednn() -> None:
    portable = ComputeParams(portable_kernels=True, threads=2)
    with pytest.raises(
        ParamsError,
        match=r"compute.portable_kernels must be false when the environment switches "
        r"oneDNN off. Received: true with TF_ENABLE_ONEDNN_OPTS=0",
    ):
        check_onednn_is_on(portable, {"TF_ENABLE_ONEDNN_OPTS": "0"})
    check_onednn_is_on(portable, {"TF_ENABLE_ONEDNN_OPTS": "1"})
    check_onednn_is_on(portable, {})
    check_onednn_is_on(ComputeParams(portable_kernels=False, threads=2), {"TF_ENABLE_ONEDNN_OPTS": "false"})


def test_fact_differences_put_the_decisive_facts_first() -> None:
    then = {"kernels": "AVX2", "threads": 2, "cpu": "A", "tensorflow": "2.21.0"}
    now = {"kernels": "AVX2", "threads": 4, "cpu": "B", "tensorflow": "2.21.0"}
    assert fact_differences(then, now) == ["threads: 2 then, 4 now", "cpu: 'A' then, 'B' now"]


ONEDNN_PROBE = """
import sys
from mnist_dvc.params.compute import ComputeParams
from mnist_dvc.reproducible_compute import configure_compute
configure_compute(ComputeParams(portable_kernels=sys.argv[1] == "portable", threads=1))
import tensorflow as tf
tf.nn.conv2d(tf.ones((1, 8, 8, 1)), tf.ones((3, 3, 1, 8)), 1, "SAME")
"""


@pytest.mark.skipif(best_isa(THIS_CPU) not in ISA_NAMES[ISA_NAMES.index("AVX2") :], reason="needs an AVX2 CPU")
@pytest.mark.parametrize(("mode", "reported"), [("portable", "Intel AVX2"), ("native", "Intel SSE4.1")])
def test_onednn_runs_at_the_cap_the_project_sets(mode: str, reported: str) -> None:
    # oneDNN's own report of the instruction set it dispatches to, with the environment asking for SSE4.1.
    machine = Machine(environment=(("ONEDNN_VERBOSE", "1"), (ISA_VARIABLE, "SSE41")))
    output = run([sys.executable, "-c", ONEDNN_PROBE, mode], PROJECT_ROOT, machine)
    assert f"isa:{reported}\n" in output.replace("\r", "")


def instruction_sets_of_this_cpu() -> list[str]:
    """Every oneDNN level this CPU runs, lowest to highest (AVX2, AVX512_CORE, ... as it allows)."""
    best = best_isa(THIS_CPU)
    return list(ISA_NAMES[: ISA_NAMES.index(best) + 1]) if best else []


def train_once(workspace: Path, name: str, machine: Machine, portable: bool = True) -> bytes:
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["compute"]["portable_kernels"] = portable
    params["train"].update(epochs=1, warmup_epochs=0, batch_size=16)
    (workspace / f"{name}.yaml").write_text(yaml.safe_dump(params))
    run(
        [
            sys.executable,
            "-m",
            "stages.train",
            "--params",
            str(workspace / f"{name}.yaml"),
            "--prepared-dir",
            str(workspace / "prepared"),
            "--model-out",
            str(workspace / name / "model.keras"),
            "--log-dir",
            str(workspace / name / "training"),
            "--summary-out",
            str(workspace / name / "train.json"),
        ],
        PROJECT_ROOT,
        machine,
    )
    return (workspace / name / "model.keras").read_bytes() + (workspace / name / "train.json").read_bytes()


@pytest.mark.slow
@pytest.mark.skipif(best_isa(THIS_CPU) is None, reason="needs an x86-64 CPU that oneDNN's JIT kernels run on")
def test_training_gives_the_same_bytes_above_at_and_below_the_cap_and_on_one_cpu(tmp_path: Path) -> None:
    """The cap's three cases are the instruction sets that count: this CPU's best (above AVX2 on an AVX-512 CPU),
    AVX2 itself, and the lowest oneDNN runs (each level between behaves like one of them: capped, or lower)."""
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    for split, seed in (("train", 0), ("val", 1)):
        images, labels = synthetic_digits(per_class=8, seed=seed)
        np.save(prepared / f"{split}_images.npy", images[..., np.newaxis])
        np.save(prepared / f"{split}_labels.npy", labels)
    one_cpu = frozenset({min(os.sched_getaffinity(0))})
    levels = instruction_sets_of_this_cpu()
    tried = [level for level in levels if level in (levels[0], levels[-1], "AVX2")]
    variants = {
        f"{level}{' 1 CPU' if index % 2 else ''}": Machine(
            environment=((ISA_VARIABLE, level),), cpus=one_cpu if index % 2 else None
        )
        for index, level in enumerate(reversed(tried))
    }
    results = {name: train_once(tmp_path, name.replace(" ", "_"), machine) for name, machine in variants.items()}
    reference = next(iter(results.values()))
    assert [name for name, result in results.items() if result != reference] == [], results.keys()

    # The control: without the cap, the lowest instruction set trains other bytes than the highest,
    # so the equality above is the cap's doing, not a model too small to notice.
    if len(levels) > 1:
        native = train_once(
            tmp_path, "native_lowest", Machine(environment=((ISA_VARIABLE, levels[0]),)), portable=False
        )
        assert native != reference
