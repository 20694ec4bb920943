"""Entry of the inference process: ``python -m vadmon.inference --config X``.

The only inference code that knows the config: it loads it, asks the composition root
(``vadmon.settings``) for the settings, builds the scorer and runs ``vadmon.inference.process``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import threading

import torch

from vadmon.config import MonitorConfig
from vadmon.inference.build import build_scorer, inference_threads
from vadmon.inference.loading import model_loading
from vadmon.inference.phrases import PhraseBank
from vadmon.inference.process import run_inference
from vadmon.runtime.entry import process_main, process_parser
from vadmon.settings import inference_settings

log = logging.getLogger("vadmon.inference")


def start(cfg: MonitorConfig, args: argparse.Namespace, stop: threading.Event) -> int:
    torch.set_num_threads(inference_threads(cfg.model.threads))
    cameras = [c.source for c in cfg.enabled_cameras().values()]
    what = f"{cfg.model.mode} {cfg.model.checkpoint or cfg.model.clip_pretrained or ''}"
    with model_loading(cfg.model.mode, what.strip()):
        built = build_scorer(cfg.model, cfg.model.device, cameras)
    log.info("model ready: %s, %s", built.scorer.mode, built.runtime)
    bank = PhraseBank.from_config(cfg.explain, built.encoder.clip)
    settings = inference_settings(cfg)
    return run_inference(settings, built.scorer, built.encoder, stop, built.runtime, bank)


def main(argv: list[str] | None = None) -> int:
    parser = process_parser("inference", __doc__.split("\n")[0])
    return process_main("inference", parser, argv, start)


if __name__ == "__main__":
    code = main()
    # torch's object graph makes the interpreter's final garbage collection take 5–8 s on a
    # loaded CPU (measured): everything is closed by now, so let the exit skip it
    gc.freeze()
    sys.exit(code)
