"""``python -m hf_wav2vec2.cli``: the ``hf-wav2vec2`` command."""

import sys

from . import main

sys.exit(main())
