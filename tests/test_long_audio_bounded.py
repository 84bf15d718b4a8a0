"""Long audio in bounded memory (issue 13's guarantee): a chunked transcription of a file streams it, so no more
than about one chunk of samples is held at a time, however long the file (benchmarks/bench_long_audio.py measures
the process's peak RSS up to an hour of audio; this is the fast check of the same property)."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch
from test_pipeline_hf_wav2vec2 import SR, make_processor, noise, small_config
from transformers import pipeline

import hf_wav2vec2.pipeline_hf_wav2vec2 as pipeline_module
from hf_wav2vec2 import HfWav2Vec2ForCTC
from hf_wav2vec2.chunking import _STREAM_BLOCK_FRAMES, SoundFileStream

SECONDS, CHUNK_S, STRIDE_S = 60, 4.0, 1.0


def test_a_long_file_is_transcribed_one_chunk_at_a_time(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = HfWav2Vec2ForCTC(small_config()).eval()
    processor = make_processor(tmp_path / "processor")
    asr = pipeline(
        "automatic-speech-recognition",
        model=model,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
    )
    path = tmp_path / "long.wav"
    audio = np.tile(noise(10.0), SECONDS // 10)
    sf.write(path, audio, SR, subtype="PCM_16")

    blocks, held, model_inputs = [], [], []
    read = SoundFileStream.read

    def recording_read(self, n):
        out = read(self, n)
        blocks.append(len(out))
        held.append(self.buffered)  # decoded samples the stream keeps for the next read
        return out

    monkeypatch.setattr(SoundFileStream, "read", recording_read)
    forward = model.forward
    monkeypatch.setattr(
        model,
        "forward",
        lambda input_values, **kw: model_inputs.append(input_values.shape[-1]) or forward(input_values, **kw),
    )

    def never(*args, **kwargs):
        raise AssertionError("the file was loaded whole")

    monkeypatch.setattr(pipeline_module, "prepare_pipeline_input", never)
    text = asr(str(path), chunk_length_s=CHUNK_S, stride_length_s=STRIDE_S)["text"]
    chunk = int(CHUNK_S * SR)
    assert text and sum(blocks) == len(audio)  # every sample was read, in blocks
    assert max(blocks) <= chunk and max(held) < _STREAM_BLOCK_FRAMES  # a chunk out, less than a block kept
    assert max(model_inputs) <= chunk and len(model_inputs) >= SECONDS / CHUNK_S
    assert _STREAM_BLOCK_FRAMES + chunk < len(audio) / 5  # so what is held is a small part of the file
