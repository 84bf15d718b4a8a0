"""Tiny random models shared by the tests (no Hub access anywhere in the suite)."""

import os

import pytest
import torch

TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    conv_dim=(16, 16, 16),
    conv_kernel=(10, 3, 3),
    conv_stride=(5, 2, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    codevector_dim=16,
    proj_codevector_dim=12,
    num_codevectors_per_group=8,
    num_codevector_groups=2,
    num_negatives=6,
    mask_time_length=4,
    vocab_size=12,
)
BASE_LIKE = dict(TINY, feat_extract_norm="group", conv_bias=False, do_stable_layer_norm=False)
LARGE_LIKE = dict(TINY, feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True)
NO_DROPOUT = dict(
    hidden_dropout=0.0,
    activation_dropout=0.0,
    attention_dropout=0.0,
    feat_proj_dropout=0.0,
    feat_quantizer_dropout=0.0,
    final_dropout=0.0,
    layerdrop=0.0,
)


def tiny_config(variant="base", **overrides):
    from hf_wav2vec2 import HfWav2Vec2Config

    values = dict(BASE_LIKE if variant == "base" else LARGE_LIKE)
    values.update(overrides)
    return HfWav2Vec2Config(**values)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _library_logging() -> tuple[int, bool]:
    import transformers

    return transformers.utils.logging.get_verbosity(), transformers.utils.logging.is_progress_bar_enabled()


_LIBRARY_LOGGING = _library_logging()  # as the suite found it, before any command quieted it


@pytest.fixture(autouse=True)
def _restore_library_logging():
    """In-process commands quiet transformers for the rest of the process, as the real console script wants; the
    next test expects transformers' warnings. The state restored is the suite's start, not the test's: a
    module-scoped fixture that runs a command sets up before any function-scoped fixture could take a snapshot."""
    yield
    import transformers

    verbosity, progress = _LIBRARY_LOGGING
    transformers.utils.logging.set_verbosity(verbosity)
    (transformers.utils.logging.enable_progress_bar if progress else transformers.utils.logging.disable_progress_bar)()


# Under CI=true a skip is a failure: everything the suite needs is installed by scripts/setup.sh, so a skipped
# test there means a missing install step that a green run would hide. A test that may legitimately skip in CI
# (hardware the CI machine cannot have) says so with @pytest.mark.skip_ok_in_ci.
def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_configure(config):
    config.addinivalue_line("markers", "skip_ok_in_ci: this test may skip under CI=true (e.g. it needs a GPU)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and _in_ci()) or hasattr(report, "wasxfail") or item.get_closest_marker("skip_ok_in_ci"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, where scripts/setup.sh must install what it needs: {reason}"
