"""Stage 3, train: fit the CNN named in params on the prepared training split and save it to `models/`.

Two recipes share this one stage: `model: tutorial` with a constant learning rate and early stopping
rebuilds the tutorial's model and procedure for comparison; `model: compact` with augmentation and a
warm-up + cosine schedule is the project's default. Training curves are logged per epoch with dvclive;
the saved model file depends only on the weights and architecture (see `mnist_dvc.model.files`).

With `include_validation` (the default recipe's final model) the validation images are trained on too, so no
validation score is measured: train.json records how many images trained the model and no val_ figures, and
the val curves are written empty (a header and no epochs) so that `dvc plots show` draws the train curves
without warning of a missing file.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from mnist_dvc.atomic_files import atomic_directory, outputs_move_together, write_text_atomically
from mnist_dvc.formats.prepared_arrays import read_prepared
from mnist_dvc.formats.training_log import write_empty_validation_curves
from mnist_dvc.model.architectures import configure_tensorflow
from mnist_dvc.model.files import save_model
from mnist_dvc.params.compute import ComputeParams
from mnist_dvc.params.loading import load_section
from mnist_dvc.params.train import TrainParams
from mnist_dvc.process_setup import configure_logging, exits_cleanly_on_bad_input
from mnist_dvc.training import EpochLogger, build_model, compile_model, fit, fitting_images, summarise_history

logger = logging.getLogger("stages.train")


@exits_cleanly_on_bad_input
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared-dir", type=Path, required=True)
    parser.add_argument("--model-out", type=Path, required=True, help="the saved .keras model")
    parser.add_argument("--log-dir", type=Path, required=True, help="dvclive folder for the training curves")
    parser.add_argument("--summary-out", type=Path, required=True, help="JSON summary of the kept epoch")
    args = parser.parse_args(argv)
    configure_logging()
    params = load_section(args.params, TrainParams.SECTION, TrainParams)
    configure_tensorflow(params.random_seed, load_section(args.params, ComputeParams.SECTION, ComputeParams))
    train = read_prepared(args.prepared_dir, "train")
    val = read_prepared(args.prepared_dir, "val")
    logger.info("train %s, val %s", train.images.shape, val.images.shape)

    fit_x, fit_y = fitting_images(train, val, params.include_validation)
    validated = not params.include_validation
    logger.info(
        "fitting on %d images%s",
        len(fit_y),
        "" if validated else " (training and validation splits: no validation score)",
    )

    model = build_model(params)
    steps_per_epoch = -(-len(fit_y) // params.batch_size)
    compile_model(model, params, steps_per_epoch)
    logger.info("model %s: %d parameters", model.name, model.count_params())

    from dvclive.live import Live  # imported here: dvclive pulls in DVC, which only this stage needs

    started = time.perf_counter()
    with outputs_move_together():
        with (
            atomic_directory(args.log_dir) as staging,
            Live(dir=str(staging), dvcyaml=False, save_dvc_exp=False, report=None) as live,
        ):
            history = fit(model, fit_x, fit_y, val if validated else None, params, [EpochLogger(live, params.epochs)])
            if not validated:
                write_empty_validation_curves(staging)
        logger.info("trained in %.1fs", time.perf_counter() - started)
        summary = summarise_history(
            history, early_stopping=params.early_stopping_patience > 0, training_images=len(fit_y)
        )
        save_model(model, args.model_out)
        write_text_atomically(args.summary_out, json.dumps(summary, indent=2) + "\n")
    logger.info(
        "kept epoch %d (%s); wrote %s, %s and %s",
        summary["kept_epoch"],
        f"val_accuracy {summary['val_accuracy']:.4f}" if "val_accuracy" in summary else "no validation",
        args.model_out,
        args.log_dir,
        args.summary_out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
