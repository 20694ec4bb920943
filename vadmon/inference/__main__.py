"""Entry of the inference process: ``python -m vadmon.inference --config X``.

The only inference code that knows the config: it loads it, asks the composition root
(``vadmon.settings``) for the settings, builds the scorer and runs ``vadmon.inference.process``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

import torch

from vadmon.config import load_config
from vadmon.errors import VadmonError
from vadmon.inference.build import build_scorer, inference_threads
from vadmon.inference.phrases import PhraseBank
from vadmon.inference.process import run_inference
from vadmon.runtime.logs import setup_logging
from vadmon.settings import inference_settings

log = logging.getLogger("vadmon.inference")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vadmon.inference")
    p.add_argument("--config", required=True)
    args = p.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        cfg = load_config(args.config)
        setup_logging("inference", cfg.log_level)
        torch.set_num_threads(inference_threads(cfg.model.threads))
        built = build_scorer(cfg.model, cfg.model.device)
        log.info("model ready: %s, %s", built.scorer.mode, built.runtime)
        bank = PhraseBank.from_config(cfg.explain, built.encoder.clip)
        settings = inference_settings(cfg)
        return run_inference(settings, built.scorer, built.encoder, stop, built.runtime, bank)
    except VadmonError as exc:
        print(f"vadmon inference: error: {exc.line()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
