"""The first lines of a script run in a process where ``hf_wav2vec2`` cannot be imported (installed or not):
what a user with transformers only, or with only a model folder's remote code, has."""

import textwrap

#: Prepend to a script: every import of hf_wav2vec2 (or a submodule) raises ImportError in that process.
BLOCK_HF_WAV2VEC2 = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class BlockPackage(importlib.abc.MetaPathFinder):
        # the package may be installed (editable or not): make sure only what the test allows can be used
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "hf_wav2vec2":
                raise ImportError("hf_wav2vec2 is blocked in this process")
            return None

    sys.meta_path.insert(0, BlockPackage())
    """
)
