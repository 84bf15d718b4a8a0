"""Tests for hf_wav2vec2/chunking.py: the model geometry read from configs, the readers and the file stream.

The chunk iterator's geometry and the streamed pipeline are tested end to end in test_pipeline_hf_wav2vec2.py.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import soundfile as sf
from transformers import Wav2Vec2Config

from hf_wav2vec2 import HfWav2Vec2Config
from hf_wav2vec2.audio import AudioError, load_audio
from hf_wav2vec2.chunking import ArrayReader, frame_duration, open_stream, receptive_field
from hf_wav2vec2.modules_hf_wav2vec2 import conv_output_lengths

GEOMETRIES = [
    dict(conv_dim=(8,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2)),  # released
    dict(conv_dim=(8, 8), conv_kernel=(4, 2), conv_stride=(2, 2)),
    dict(conv_dim=(8, 8, 8), conv_kernel=(10, 3, 3), conv_stride=(5, 4, 2)),
]


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_receptive_field_is_the_shortest_input_with_one_frame_for_ours_and_transformers_configs(geometry):
    ours, theirs = HfWav2Vec2Config(**geometry), Wav2Vec2Config(**geometry)
    field = receptive_field(ours)
    assert receptive_field(theirs) == field  # transformers' config has no such property: computed from the convs
    assert conv_output_lengths(field, geometry["conv_kernel"], geometry["conv_stride"]) == 1
    assert conv_output_lengths(field - 1, geometry["conv_kernel"], geometry["conv_stride"]) == 0
    assert receptive_field(types.SimpleNamespace()) is None  # no conv stack: nothing to check against


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("rate", [16000, 8000])
def test_frame_duration_is_the_total_conv_stride_over_the_rate(geometry, rate):
    stride = int(np.prod(geometry["conv_stride"]))
    expected = stride / rate
    assert frame_duration(HfWav2Vec2Config(**geometry), rate) == pytest.approx(expected)
    assert frame_duration(Wav2Vec2Config(**geometry), rate) == pytest.approx(expected)
    # a config with conv strides but no inputs_to_logits_ratio property
    assert frame_duration(types.SimpleNamespace(conv_stride=geometry["conv_stride"]), rate) == pytest.approx(expected)


def test_frame_duration_errors_name_the_cause():
    with pytest.raises(ValueError, match="neither inputs_to_logits_ratio nor conv_stride"):
        frame_duration(types.SimpleNamespace(), 16000)
    for bad in (0, -8000, "16000", True):
        with pytest.raises(ValueError, match="sampling_rate must be a positive number"):
            frame_duration(HfWav2Vec2Config(), bad)


def test_array_reader_gives_the_array_in_pieces():
    audio = np.arange(10, dtype=np.float32)
    reader = ArrayReader(audio)
    pieces = [reader.read(4), reader.read(4), reader.read(4), reader.read(4)]
    assert [len(p) for p in pieces] == [4, 4, 2, 0]
    np.testing.assert_array_equal(np.concatenate(pieces), audio)


def test_stream_equals_the_whole_file_loaded_at_once(tmp_path):
    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((150_000, 2))).astype(np.float32)  # more than two blocks at 44.1 kHz
    path = tmp_path / "long.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    stream = open_stream(path, 16000, min_samples=400)
    pieces = []
    while len(piece := stream.read(7000)):
        pieces.append(piece)
    streamed = np.concatenate(pieces)
    whole = load_audio(path, 16000)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    assert stream.finished and stream.file.closed


def test_stream_refuses_truncated_and_too_short_files_and_passes_on_what_it_cannot_read(tmp_path):
    audio = np.zeros(8000, np.float32)
    cut = tmp_path / "cut.wav"
    sf.write(cut, audio, 16000, subtype="PCM_16")
    cut.write_bytes(cut.read_bytes()[:5000])
    with pytest.raises(AudioError, match=r"truncated: its header declares 16000 bytes of samples") as err:
        open_stream(cut, 16000, None)
    assert str(err.value).startswith(f"{cut}: ")
    short = tmp_path / "short.wav"
    sf.write(short, audio[:100], 16000)
    with pytest.raises(AudioError, match=r"100 samples at 16 kHz\); the model needs at least 400"):
        open_stream(short, 16000, 400)
    not_audio = tmp_path / "notes.txt"
    not_audio.write_text("not audio")
    # None: the caller loads these whole, which gives the right error (or decodes them with ffmpeg)
    assert open_stream(not_audio, 16000, None) is None
    assert open_stream(tmp_path / "missing.wav", 16000, None) is None
