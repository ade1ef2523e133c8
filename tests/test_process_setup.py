"""Process start-up: nothing happens on import; a stage process gets TensorFlow's variables and a stderr without
the known native noise, every other line kept in order."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mnist_dvc.process_setup import NATIVE_NOISE, TENSORFLOW_ENVIRONMENT, is_native_noise
from tests.conftest import PROJECT_ROOT

# Lines as TensorFlow 2.21, LiteRT 2.3 and the int8 converter print them (from a real `dvc repro`).
NOISE_SEEN = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796177833.338653    8025 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To "
    "turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "E0000 00:00:1796178195.610952    8311 node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool "
    "which is not in the op definition: Op<name=MapDataset; signature=input_dataset:variant> This may be expected "
    "if your graph generating binary is newer than this binary. Unknown attributes will be ignored.",
    "fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, output_inference_type: FLOAT32",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]
KEPT = [
    "W0000 00:00:1796178195.610952    8311 op_kernel.cc:1857] OP_REQUIRES failed at conv_ops.cc: out of memory",
    "E0000 00:00:1796178195.610952    8311 node_def_util.cc:682] some other error",
    "error: params.yaml: train.epochs must be a positive integer. Received: 0",
    "INFO: Created TensorFlow Lite delegate for GPU.",
]


def test_each_pattern_matches_the_line_it_is_for_and_nothing_else() -> None:
    assert len(NATIVE_NOISE) == len(NOISE_SEEN)
    assert all(is_native_noise(line) for line in NOISE_SEEN)
    assert not any(is_native_noise(line) for line in KEPT)


def run_python(code: str, *arguments: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if name not in TENSORFLOW_ENVIRONMENT}
    command = [sys.executable, *(["-m", code] if module else ["-c", code]), *arguments]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, check=False)


def test_a_filtered_stderr_drops_the_noise_and_keeps_every_other_line_in_order() -> None:
    lines = [line for pair in zip(NOISE_SEEN, KEPT + [""], strict=True) for line in pair if line]
    code = (
        "import os, sys, logging\n"
        "from mnist_dvc.process_setup import filter_native_stderr\n"
        "filter_native_stderr()\n"
        f"for line in {lines!r}:\n"
        "    os.write(2, (line + '\\n').encode())\n"  # as C++ code writes: straight to file descriptor 2
        "logging.getLogger('stage').warning('a real warning')\n"
        "os.write(2, b'no newline at the end')\n"
    )
    result = run_python(code)
    assert result.returncode == 0
    assert result.stderr == "\n".join(KEPT) + "\na real warning\nno newline at the end"


@pytest.mark.parametrize("module", ["mnist_dvc", "stages", "stages.evaluate", "bench", "tools.verify"])
def test_importing_a_module_sets_nothing(module: str) -> None:
    code = f"import os, sys, {module}\nprint(sorted(set(os.environ) & {set(TENSORFLOW_ENVIRONMENT)!r}))"
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_a_stage_process_gets_tensorflow_s_variables_before_its_imports() -> None:
    """`python -m stages.<name>`: the package's start-up runs before the stage module is imported."""
    result = run_python("stages.preprocess", "--help", module=True)
    assert result.returncode == 0 and "--raw-dir" in result.stdout
    code = (
        "import runpy, sys, os\n"
        "sys.argv = ['-m']\n"  # what Python sets while it locates a `-m` module
        "import stages\n"
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n"
    )
    assert run_python(code).stdout.splitlines()[0] == "1 2"
