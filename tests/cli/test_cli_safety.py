"""Issue 13 on the command line: no output replaces an input (transcribe, evaluate, build-lm), no two outputs collide
(subtitles of same-named files), and a model folder whose config.json disagrees with its weights is reported with
the tensors that differ instead of transformers' "Could not load model ... with any of the following classes"."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
from safetensors import safe_open
from test_cli import tone_model  # noqa: F401 - fixture
from test_pipeline_hf_wav2vec2 import SR, noise, save_model_dir, tone_track

from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForCTC, cli


def write_tones(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    audio, _ = tone_track(text, seconds=3.0)
    sf.write(path, audio, SR, subtype="FLOAT")
    return str(path)


def error_lines(capsys):
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err.splitlines()


# ----------------------------------------------------------------------------------------------- outputs are not inputs


def test_transcribe_refuses_an_output_that_is_one_of_its_inputs(tone_model, tmp_path, capsys):  # noqa: F811
    first, second = write_tones(tmp_path / "first.wav", "THE CAT"), write_tones(tmp_path / "second.wav", "A HAT")
    originals = {path: open(path, "rb").read() for path in (first, second)}
    os.link(first, tmp_path / "hard-link.wav")
    model = ["--model", str(tone_model)]
    cases = [
        ([first], first, "text"),  # transcribe x.wav -o x.wav
        ([first, second], second, "json"),  # any of the inputs
        ([first], str(tmp_path / "sub" / ".." / "first.wav"), "text"),  # another spelling of the same path
        ([first], str(tmp_path / "hard-link.wav"), "srt"),  # the same file under another name
    ]
    for files, output, form in cases:
        assert cli.main(["transcribe", *files, *model, "--format", form, "-o", output]) == 2, output
        (line,) = error_lines(capsys)
        assert line == (
            f"hf-wav2vec2: error: {output}: the output would overwrite an input file; choose another --output"
        )
    assert {path: open(path, "rb").read() for path in originals} == originals
    # a subtitle file of the output directory that is an input is refused as well
    (tmp_path / "cue.wav").write_bytes(open(first, "rb").read())
    assert (
        cli.main(["transcribe", first, str(tmp_path / "cue.wav"), *model, "--format", "vtt", "-o", str(tmp_path)]) == 0
    )  # first.vtt and cue.vtt: no input among them
    (tmp_path / "in").mkdir()
    inputs = [str(tmp_path / "in" / "first.wav"), str(tmp_path / "in" / "first.vtt")]  # named like first's subtitles
    for path in inputs:
        shutil.copy(first, path)
    assert cli.main(["transcribe", *inputs, *model, "--format", "vtt", "-o", str(tmp_path / "in")]) == 2
    assert error_lines(capsys)[-1] == (
        f"hf-wav2vec2: error: {inputs[1]}: the output would overwrite an input file (the subtitles of {inputs[0]}); "
        "choose another --output"
    )


def test_evaluate_refuses_to_overwrite_its_data(tone_model, tmp_path, capsys):  # noqa: F811
    data = tmp_path / "data"
    write_tones(data / "first.wav", "THE CAT")
    write_tones(data / "second.wav", "A HAT")
    (data / "metadata.csv").write_text("file,text\nfirst.wav,THE CAT\nsecond.wav,A HAT\n", encoding="utf-8")
    (data / "notes.txt").write_text("recorded in the kitchen\n")
    outside = write_tones(tmp_path / "elsewhere" / "third.wav", "A CAT")
    (tmp_path / "list.tsv").write_text(f"data/first.wav\tTHE CAT\n{outside}\tA CAT\n", encoding="utf-8")
    snapshot = {p: p.read_bytes() for p in [*data.iterdir(), tmp_path / "list.tsv"]}
    model = ["--model", str(tone_model)]
    refused = [
        (data, data / "metadata.csv"),  # evaluate -o data/metadata.csv
        (data, data / "first.wav"),  # a listed audio file
        (data, data / "notes.txt"),  # any other file of the folder
        (data, data / "metadata.jsonl"),  # a new metadata file would change what the folder lists
        (tmp_path / "list.tsv", tmp_path / "list.tsv"),
        (tmp_path / "list.tsv", tmp_path / "elsewhere" / "third.wav"),  # listed, outside the list's folder
    ]
    for source, output in refused:
        assert cli.main(["evaluate", str(source), *model, "-o", str(output)]) == 2, output
        (line,) = error_lines(capsys)
        assert line.startswith(f"hf-wav2vec2: error: {output}: the output would overwrite ") and "--output" in line
    assert {p: p.read_bytes() for p in snapshot} == snapshot
    assert not (data / "metadata.jsonl").exists()
    # a new report beside the data, or anywhere else, is written
    for output in (data / "report.json", tmp_path / "report.txt"):
        assert cli.main(["evaluate", str(data), *model, "-o", str(output), "--format", "json"]) == 0
        assert json.loads(output.read_text())["num_utterances"] == 2


def test_build_lm_refuses_to_overwrite_its_corpus(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("THE CAT SAT\nTHE CAT ATE\n")
    os.link(corpus, tmp_path / "linked.txt")
    for out in (corpus, tmp_path / "sub" / ".." / "corpus.txt", tmp_path / "linked.txt"):
        assert cli.main(["build-lm", str(corpus), str(out), "--order", "2"]) == 2
        (line,) = error_lines(capsys)
        assert line == (
            f"hf-wav2vec2: error: {out}: the output would overwrite the training text {corpus}; choose another --output"
        )
    assert corpus.read_text() == "THE CAT SAT\nTHE CAT ATE\n"
    assert cli.main(["build-lm", str(corpus), str(tmp_path / "lm.arpa"), "--order", "2"]) == 0
    assert "\\data\\" in (tmp_path / "lm.arpa").read_text()


# ----------------------------------------------------------------------------------------------- outputs do not collide


def written(directory):
    return {p.relative_to(directory).as_posix(): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_subtitles_of_same_named_files_keep_their_folders(tone_model, tmp_path, capsys):  # noqa: F811
    files = [
        write_tones(tmp_path / "a" / "same.wav", "THE CAT"),
        write_tones(tmp_path / "b" / "same.wav", "A HAT"),
        write_tones(tmp_path / "b" / "deeper" / "other.wav", "A CAT"),
    ]
    subs = tmp_path / "subs"
    assert cli.main(["transcribe", *files, "--model", str(tone_model), "--format", "srt", "-o", str(subs)]) == 0
    assert error_lines(capsys) == []
    out = written(subs)
    assert sorted(out) == ["a/same.srt", "b/deeper/other.srt", "b/same.srt"]
    # each file holds its own input's words
    words = {
        name: [line for line in text.splitlines() if line and not line.isdigit() and "-->" not in line]
        for name, text in out.items()
    }
    assert " ".join(words["a/same.srt"]) == "THE CAT" and " ".join(words["b/same.srt"]) == "A HAT"
    assert " ".join(words["b/deeper/other.srt"]) == "A CAT"


def test_subtitles_of_one_stem_get_numbered_names(tone_model, tmp_path, capsys):  # noqa: F811
    wav = write_tones(tmp_path / "x.wav", "THE CAT")
    flac = str(tmp_path / "x.flac")
    audio, _ = tone_track("A HAT", seconds=3.0)
    sf.write(flac, audio, SR)
    subs = tmp_path / "subs"
    assert cli.main(["transcribe", wav, flac, wav, "--model", str(tone_model), "--format", "vtt", "-o", str(subs)]) == 0
    warnings = error_lines(capsys)
    assert warnings == [
        f"hf-wav2vec2: warning: {flac}: {subs / 'x.vtt'} is the output of another input; writing {subs / 'x-2.vtt'}",
        f"hf-wav2vec2: warning: {wav}: {subs / 'x.vtt'} is the output of another input; writing {subs / 'x-3.vtt'}",
    ]
    out = written(subs)
    assert sorted(out) == ["x-2.vtt", "x-3.vtt", "x.vtt"]
    assert out["x.vtt"] == out["x-3.vtt"] != out["x-2.vtt"] and "HAT" in out["x-2.vtt"]


# ----------------------------------------------------------------------------------------------- config vs weights


def mismatched_model(tmp_path):
    """A saved CTC model whose config.json asks for a wider feed-forward than its weights hold; returns the folder
    and the tensors whose shapes differ, {name: (shape in the weights, shape the config gives)}."""
    folder = save_model_dir(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] *= 2
    (folder / "config.json").write_text(json.dumps(config))
    wanted = {name: tuple(p.shape) for name, p in HfWav2Vec2ForCTC(HfWav2Vec2Config(**config)).state_dict().items()}
    with safe_open(folder / "model.safetensors", framework="pt") as weights:
        stored = {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}
    differ = {name: (shape, wanted[name]) for name, shape in stored.items() if name in wanted and shape != wanted[name]}
    assert differ  # the test really breaks the model
    return folder, differ


@pytest.mark.parametrize("command", ["transcribe", "evaluate", "convert", "push"])
def test_a_config_that_disagrees_with_the_weights_names_the_tensors(command, tmp_path, capsys):
    folder, differ = mismatched_model(tmp_path)
    sf.write(tmp_path / "a.wav", noise(0.5), SR)
    (tmp_path / "refs.tsv").write_text("a.wav\tHELLO\n")
    argv = {
        "transcribe": ["transcribe", str(tmp_path / "a.wav"), "--model", str(folder)],
        "evaluate": ["evaluate", str(tmp_path / "refs.tsv"), "--model", str(folder)],
        "convert": ["convert", str(folder), str(tmp_path / "out")],
        "push": ["push", str(folder), "me/x", "--dry_run", str(tmp_path / "out")],
    }[command]
    capsys.readouterr()  # what building the folder printed (progress bars) is not the command's
    assert cli.main(argv) == 1
    lines = error_lines(capsys)
    assert lines[0] == (
        f"hf-wav2vec2: error: {folder}: config.json does not match the weights: {len(differ)} tensors "
        "have other shapes (name: shape in the weights, shape config.json asks for)"
    )
    listed = [line.strip().split(": ", 1) for line in lines[1:]]
    assert {name: shapes for name, shapes in listed} == {
        name: f"{stored}, {wanted}" for name, (stored, wanted) in differ.items()
    }
    assert "Could not load model" not in "\n".join(lines) and not (tmp_path / "out").exists()


def test_long_mismatch_lists_are_cut(tmp_path, monkeypatch, capsys):
    from hf_wav2vec2.cli import common

    folder, differ = mismatched_model(tmp_path)
    monkeypatch.setattr(common, "MISMATCH_LIST_LIMIT", 2)
    capsys.readouterr()  # what building the folder printed (progress bars) is not the command's
    assert cli.main(["convert", str(folder), str(tmp_path / "out")]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 4 and lines[-1] == f"  ... and {len(differ) - 2} more"


def test_a_model_that_fails_for_another_reason_keeps_its_own_error(tmp_path, capsys):
    folder = save_model_dir(tmp_path / "model")
    (folder / "model.safetensors").unlink()  # no weights: not a shape problem
    sf.write(tmp_path / "a.wav", np.zeros(SR, dtype=np.float32), SR)
    capsys.readouterr()  # what building the folder printed (progress bars) is not the command's
    assert cli.main(["transcribe", str(tmp_path / "a.wav"), "--model", str(folder)]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"hf-wav2vec2: error: {folder}: ")
    assert "does not match the weights" not in lines[0]


# ----------------------------------------------------------------------------------------------- pickled weights

RAN = []  # what the crafted file's code appends to, were it ever run


def _record_execution():
    RAN.append("the checkpoint ran code")
    return 0.0


class Payload:
    """Unpickling this runs _record_execution: a stand-in for a checkpoint that carries code."""

    def __reduce__(self):
        return (_record_execution, ())


class TrustedStateDict(dict):
    """A harmless custom class: weights-only loading refuses it as it refuses any class it does not know."""


def pickled_model(tmp_path, name, extra=None, container=dict):
    """A saved CTC model whose weights are a pytorch_model.bin holding ``container`` of the tensors (plus
    ``extra`` entries); returns the folder and the model."""
    import torch
    from safetensors.torch import load_file

    folder = save_model_dir(tmp_path / name)
    model = HfWav2Vec2ForCTC.from_pretrained(folder).eval()
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(container({**weights, **(extra or {})}), folder / "pytorch_model.bin")
    return folder, model


def refusal_line(folder, remedy):
    return (
        f"{folder / 'pytorch_model.bin'}: loading it needs arbitrary-code unpickling (it pickles "
        f"{__name__}.{_record_execution.__name__}), which could run any code and is never done on load; {remedy}"
    )


CLI_REMEDY = (
    "if you trust its source, convert it once to safetensors with hf-wav2vec2 convert --unsafe_load {} NEW_FOLDER"
)
API_REMEDY = (
    "if you trust its source, convert it once to safetensors with convert(..., allow_unsafe_pickle=True), "
    "on the command line hf-wav2vec2 convert --unsafe_load {} NEW_FOLDER"
)


@pytest.mark.parametrize("command", ["transcribe", "evaluate", "convert", "push"])
def test_a_pickled_pytorch_model_bin_is_refused_in_one_line_without_running_it(command, tmp_path, capsys):
    folder, _ = pickled_model(tmp_path, "model", extra={"payload": Payload()})
    sf.write(tmp_path / "a.wav", noise(0.5), SR)
    (tmp_path / "refs.tsv").write_text("a.wav\tHELLO\n")
    argv = {
        "transcribe": ["transcribe", str(tmp_path / "a.wav"), "--model", str(folder)],
        "evaluate": ["evaluate", str(tmp_path / "refs.tsv"), "--model", str(folder)],
        "convert": ["convert", str(folder), str(tmp_path / "out")],
        "push": ["push", str(folder), "me/x", "--dry_run", str(tmp_path / "out")],
    }[command]
    capsys.readouterr()
    assert cli.main(argv) == 1
    remedy = (API_REMEDY if command in ("convert", "push") else CLI_REMEDY).format(folder)  # push converts first
    assert error_lines(capsys) == [f"hf-wav2vec2: error: {refusal_line(folder, remedy)}"]
    assert RAN == [] and not (tmp_path / "out").exists()


def test_the_python_api_refuses_it_with_the_same_line(tmp_path):
    from hf_wav2vec2.convert import ConversionError, convert, load_model_directory

    folder, _ = pickled_model(tmp_path, "model", extra={"payload": Payload()})
    for call in (lambda: load_model_directory(folder), lambda: convert(folder, tmp_path / "out")):
        with pytest.raises(ConversionError) as error:
            call()
        assert str(error.value) == refusal_line(folder, API_REMEDY.format(folder))
    assert RAN == [] and not (tmp_path / "out").exists()


def test_unsafe_load_converts_a_trusted_pickled_folder_to_safetensors(tmp_path, capsys):
    import torch

    folder, original = pickled_model(tmp_path, "model", container=TrustedStateDict)
    capsys.readouterr()
    assert cli.main(["convert", str(folder), str(tmp_path / "out")]) == 1  # refused without the flag
    assert "TrustedStateDict" in error_lines(capsys)[0]
    assert cli.main(["convert", str(folder), str(tmp_path / "out"), "--unsafe_load"]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file() and not (tmp_path / "out" / "pytorch_model.bin").exists()
    converted = HfWav2Vec2ForCTC.from_pretrained(tmp_path / "out")
    x = torch.from_numpy(noise(0.5))[None]
    with torch.no_grad():
        assert torch.equal(converted.eval()(x).logits, original(x).logits)
    sf.write(tmp_path / "a.wav", noise(0.5), SR)
    assert cli.main(["transcribe", str(tmp_path / "a.wav"), "--model", str(tmp_path / "out")]) == 0


@pytest.mark.parametrize(
    "content",
    [
        b"garbage",  # no zip, no pickle: the weights-only loader's "Unsupported operand" (an UnpicklingError)
        bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),  # torch fails with an IndexError
        b"PK\x03\x04" + b"\0" * 64,  # a zip header and nothing after it: torch's RuntimeError names no file
    ],
    ids=["garbage", "random-bytes", "truncated-zip"],
)
def test_a_corrupt_pytorch_model_bin_names_the_file_and_the_cause(tmp_path, capsys, content):
    folder = save_model_dir(tmp_path / "model")
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(content)
    sf.write(tmp_path / "a.wav", noise(0.5), SR)
    capsys.readouterr()
    assert cli.main(["transcribe", str(tmp_path / "a.wav"), "--model", str(folder)]) == 1
    (line,) = error_lines(capsys)
    assert line.startswith(f"hf-wav2vec2: error: {folder / 'pytorch_model.bin'}: not a readable PyTorch file (")
    assert "arbitrary-code" not in line


@pytest.mark.parametrize("command", ["transcribe", "convert"])
def test_a_damaged_safetensors_file_names_the_file_and_the_cause(tmp_path, capsys, command):
    folder = save_model_dir(tmp_path / "model")
    (folder / "model.safetensors").write_bytes(b"\0" * 100)  # safetensors' SafetensorError, no file named
    sf.write(tmp_path / "a.wav", noise(0.5), SR)
    argv = {
        "transcribe": ["transcribe", str(tmp_path / "a.wav"), "--model", str(folder)],
        "convert": ["convert", str(folder), str(tmp_path / "out")],
    }[command]
    capsys.readouterr()
    assert cli.main(argv) == 1
    (line,) = error_lines(capsys)
    assert line.startswith(f"hf-wav2vec2: error: {folder / 'model.safetensors'}: not a readable safetensors file (")
    assert "SafetensorError" in line and not (tmp_path / "out").exists()
