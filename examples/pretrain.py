#!/usr/bin/env python
"""Pre-train wav2vec 2.0 (see hf_wav2vec2/training/pretrain.py or --help); works with ``accelerate launch``."""

import os
import sys

from hf_wav2vec2.training.pretrain import main

if __name__ == "__main__":
    try:
        main()
    except ValueError as error:
        # Bad input (a damaged checkpoint, a non-empty --output_dir, no usable audio, a full disk during a save,
        # an inconsistent config): the message names the file and the cause; a traceback would bury it.
        sys.exit(f"pretrain: error: {error}")
    # torch 2.x can abort at interpreter exit after a gloo/NCCL run; the work is saved, so leave without teardown.
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
