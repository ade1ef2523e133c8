"""How TensorFlow computes: which CPU kernels and how many threads, so a run gives the same bytes anywhere.

A floating-point sum depends on the order of its terms. TensorFlow's oneDNN kernels choose that order
by the CPU's vector width (SSE, AVX2, AVX-512, AMX each block the reductions of a convolution
differently) and by the number of threads that share a reduction. So the same code, data and seed
train a model that differs in its last bits on an AVX-512 CPU, or with another thread count, and every
output downstream differs with it. The `compute` section of params.yaml pins both:

- `portable_kernels: true` caps oneDNN at AVX2 kernels (what every x86-64 CPU of the last decade has)
  in strict fp32 (no implicit bf16), set by the project whatever `ONEDNN_MAX_CPU_ISA` and
  `ONEDNN_DEFAULT_FPMATH_MODE` the environment holds, and refuses `TF_ENABLE_ONEDNN_OPTS=0`;
- `threads: N` fixes the intra-op thread count, whatever the number of cores or the CPU affinity.

Both must be in place before TensorFlow runs its first op; oneDNN reads its ISA cap at its first
primitive, not at import, which is why this can run after `import tensorflow`.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from mnist_dvc.errors import ParamsError
from mnist_dvc.params.compute import ComputeParams

logger = logging.getLogger("mnist_dvc.reproducible_compute")

ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
ONEDNN_SWITCH = "TF_ENABLE_ONEDNN_OPTS"
# oneDNN may compute fp32 ops in bf16 or tf32 where this variable allows it; portable kernels forbid it.
FPMATH_VARIABLE = "ONEDNN_DEFAULT_FPMATH_MODE"
PORTABLE_ISA = "AVX2"

# oneDNN's instruction-set levels, lowest first, each with the /proc/cpuinfo flags a CPU needs for it
# (oneDNN's own `cpu_isa_traits`, restricted to the levels that change fp32 kernels or add new ones).
ISA_LEVELS: tuple[tuple[str, frozenset[str]], ...] = (
    ("SSE41", frozenset({"sse4_1"})),
    ("AVX", frozenset({"avx"})),
    ("AVX2", frozenset({"avx2", "fma"})),
    ("AVX2_VNNI", frozenset({"avx2", "fma", "avx_vnni"})),
    ("AVX512_CORE", frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq"})),
    ("AVX512_CORE_VNNI", frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"})),
    ("AVX512_CORE_BF16", frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"})),
    (
        "AVX512_CORE_AMX",
        frozenset(
            {
                "avx512f",
                "avx512bw",
                "avx512vl",
                "avx512dq",
                "avx512_vnni",
                "avx512_bf16",
                "amx_tile",
                "amx_int8",
                "amx_bf16",
            }
        ),
    ),
)
ISA_NAMES = tuple(name for name, _ in ISA_LEVELS)


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first processor in a /proc/cpuinfo text (empty where it lists none)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def best_isa(flags: frozenset[str]) -> str | None:
    """The highest oneDNN instruction-set level that a CPU with these flags runs (None: below SSE4.1)."""
    supported = [name for name, needed in ISA_LEVELS if needed <= flags]
    return supported[-1] if supported else None


def kernel_isa(flags: frozenset[str], cap: str | None) -> str | None:
    """The level oneDNN runs at: the CPU's best, lowered to `cap` (a level name, or None for no cap)."""
    best = best_isa(flags)
    if best is None or cap is None or cap not in ISA_NAMES:
        return best
    return ISA_NAMES[min(ISA_NAMES.index(best), ISA_NAMES.index(cap))]


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one, else the core count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity masks
        return os.cpu_count() or 1


def intra_op_threads(params: ComputeParams) -> int:
    return params.threads or available_cpus()


def apply_isa_cap(params: ComputeParams, environment: MutableMapping[str, str]) -> str | None:
    """Set (portable) or leave (not portable) oneDNN's ISA cap and strict fp32 math in `environment`;
    return the cap in force."""
    if not params.portable_kernels:
        return environment.get(ISA_VARIABLE)
    for variable, value in ((ISA_VARIABLE, PORTABLE_ISA), (FPMATH_VARIABLE, "STRICT")):
        previous = environment.get(variable)
        if previous not in (None, value):
            logger.info("compute.portable_kernels: %s=%s in the environment replaced by %s", variable, previous, value)
        environment[variable] = value
    return PORTABLE_ISA


def check_onednn_is_on(params: ComputeParams, environment: Mapping[str, str]) -> None:
    """Portable kernels are oneDNN's: refuse an environment that switches oneDNN off (TensorFlow reads
    `TF_ENABLE_ONEDNN_OPTS` at import, before any param is known, so it cannot be overridden here)."""
    value = environment.get(ONEDNN_SWITCH, "1").strip().lower()
    if params.portable_kernels and value in ("0", "false"):
        raise ParamsError(
            f"compute.portable_kernels must be false when the environment switches oneDNN off. "
            f"Received: true with {ONEDNN_SWITCH}={environment[ONEDNN_SWITCH]}"
        )


def configure_compute(params: ComputeParams) -> None:
    """Pin oneDNN's kernels and TensorFlow's threads, and make ops deterministic. Before the first op."""
    check_onednn_is_on(params, os.environ)
    import tensorflow as tf

    apply_isa_cap(params, os.environ)
    threads = intra_op_threads(params)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        # One op at a time: more inter-op threads trained no faster in a full run here.
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        # TensorFlow fixes its thread pools when it first runs an op. A stage process always
        # configures first; only a process that runs several stages' code (the tests) lands here.
        current = tf.config.threading.get_intra_op_parallelism_threads()
        if current != threads:
            logger.warning(
                "TensorFlow already runs with %s intra-op threads; asked for %d", current or "default", threads
            )
    tf.config.experimental.enable_op_determinism()
    logger.info("compute: %s", describe_compute(platform_facts(params)))


def _cache_sizes(cache_dir: Path) -> dict[str, str]:
    """Per-core cache sizes from sysfs (`L1d`, `L2`, `L3` -> '48K'), as far as the OS shows them."""
    sizes = {}
    for index in sorted(cache_dir.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind != "Instruction":
            sizes[f"L{level}{'d' if kind == 'Data' else ''}"] = size
    return sizes


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def platform_facts(params: ComputeParams) -> dict[str, Any]:
    """What a run's bytes can depend on: kernels, threads, CPU, caches and library versions."""
    import keras
    import numpy
    import tensorflow as tf

    cpuinfo = _read_text(Path("/proc/cpuinfo"))
    flags = cpu_flags(cpuinfo)
    model = next(
        (line.partition(":")[2].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    cap = PORTABLE_ISA if params.portable_kernels else os.environ.get(ISA_VARIABLE)
    return {
        "kernels": kernel_isa(flags, cap),
        "kernel_cap": cap or "none",
        "threads": intra_op_threads(params),
        "cpu": model,
        "cpu_best_isa": best_isa(flags),
        "available_cpus": available_cpus(),
        "caches": _cache_sizes(Path("/sys/devices/system/cpu/cpu0/cache")),
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def describe_compute(facts: Mapping[str, Any]) -> str:
    """One line: 'AVX2 kernels (cap AVX2, CPU best AVX512_CORE), 2 threads on 16 CPUs: Intel Xeon ...'."""
    return (
        f"{facts['kernels']} kernels (cap {facts['kernel_cap']}, CPU best {facts['cpu_best_isa']}), "
        f"{facts['threads']} threads on {facts['available_cpus']} CPUs: {facts['cpu']}"
    )


# The facts that decide the bytes; the rest (CPU model, caches) are recorded to explain a difference.
DECISIVE_FACTS = ("kernels", "threads", "tensorflow", "keras", "numpy", "machine")


def fact_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """'threads: 2 then, 4 now' for each fact that differs, the decisive ones first."""
    keys = [*DECISIVE_FACTS, *sorted((set(recorded) | set(current)) - set(DECISIVE_FACTS))]
    return [
        f"{key}: {recorded.get(key)!r} then, {current.get(key)!r} now"
        for key in dict.fromkeys(keys)
        if recorded.get(key) != current.get(key)
    ]
