"""Tests for the hf-wav2vec2 command line: transcribe end to end (a subprocess on a saved model), output formats,
one-line errors and exit statuses, evaluate (WER/CER on labeled folders and lists), build-lm, and the wiring of
convert/push/finetune/pretrain."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
import soundfile as sf
from test_pipeline_hf_wav2vec2 import (
    SR,
    TINY_ARPA,
    near_tie_forward,
    noise,
    requires_flashlight,
    save_model_dir,
    tone_forward,
    tone_track,
)

from hf_wav2vec2 import HfWav2Vec2ForCTC, cli
from hf_wav2vec2.decoding import ArpaModel


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_model_dir(tmp_path_factory.mktemp("cli") / "model")


@pytest.fixture
def tone_model(monkeypatch, tmp_path_factory):
    """A model directory whose HfWav2Vec2ForCTC spells the tone bursts it hears (see test_pipeline_...): the class's
    forward is replaced for the test, and the saved feature extractor does not normalise (the model reads energy)."""
    monkeypatch.setattr(HfWav2Vec2ForCTC, "forward", lambda self, input_values, **kw: tone_forward(input_values))
    return save_model_dir(tmp_path_factory.mktemp("tone") / "model", do_normalize=False)


@pytest.fixture
def tone_files(tmp_path):
    paths = []
    for name, text in (("first", "THE CAT"), ("second", "A HAT")):
        audio, _ = tone_track(text, seconds=3.0)
        paths.append(str(tmp_path / f"{name}.wav"))
        sf.write(paths[-1], audio, SR, subtype="FLOAT")
    return paths


def cli_command():
    script = shutil.which("hf-wav2vec2")
    return [script] if script else [sys.executable, "-m", "hf_wav2vec2.cli"]


# ----------------------------------------------------------------------------------------------- end to end


def test_transcribe_subprocess_reports_bad_files_and_transcribes_the_others(model_dir, tmp_path):
    sf.write(tmp_path / "good.wav", noise(1.0), SR)
    sf.write(tmp_path / "stereo 44k.flac", np.stack([noise(1.0, 1, 44100), noise(1.0, 2, 44100)], axis=1), 44100)
    (tmp_path / "bad.wav").write_text("not audio")
    sf.write(tmp_path / "short.wav", noise(1.0)[:100], SR)
    files = [str(tmp_path / n) for n in ("good.wav", "bad.wav", "stereo 44k.flac", "missing.wav", "short.wav")]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    completed = subprocess.run(
        [*cli_command(), "transcribe", *files, "--model", str(model_dir), "--format", "json", "--batch_size", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    *errors, summary = completed.stderr.strip().splitlines()
    assert summary == "hf-wav2vec2: error: 3 of 5 files failed"
    # one line per bad file, printed as its batch finishes (batches are grouped by length, so not in the files' order)
    errors.sort(key=lambda line: next(i for i, f in enumerate(files) if line.startswith(f"hf-wav2vec2: error: {f}: ")))
    assert errors == [
        f"hf-wav2vec2: error: {files[1]}: not a readable audio file" + errors[0].split("not a readable audio file")[1],
        f"hf-wav2vec2: error: {files[3]}: no such file",
        errors[2],
    ]
    assert errors[2].startswith(f"hf-wav2vec2: error: {files[4]}: audio is 0.006 s") and "400 samples" in errors[2]
    results = json.loads(completed.stdout)
    assert [r["file"] for r in results] == files
    assert [r["error"] is None for r in results] == [True, False, True, False, False]
    from hf_wav2vec2 import asr_pipeline

    asr = asr_pipeline(model_dir)
    assert results[0]["text"] == asr(files[0])["text"] and results[2]["text"] == asr(files[2])["text"]


def test_transcribe_text_and_timestamps(tone_model, tone_files, capsys):
    assert cli.main(["transcribe", tone_files[0], "--model", str(tone_model), "-q"]) == 0
    assert capsys.readouterr().out == "THE CAT\n"
    assert cli.main(["transcribe", *tone_files, "--model", str(tone_model), "--timestamps", "word"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{tone_files[0]}\tTHE CAT"
    assert lines[1] == f"{tone_files[0]}\t0.14\t0.90\tTHE"  # bursts of 10 frames every 14 from frame 7
    assert lines[3] == f"{tone_files[1]}\tA HAT"


def test_transcribe_subtitles_and_outputs(tone_model, tone_files, tmp_path, capsys):
    out = tmp_path / "one.srt"
    args = ["--model", str(tone_model), "--chunk_length", "1", "--stride_length", "0.2", "--max_words_per_cue", "1"]
    assert cli.main(["transcribe", tone_files[0], *args, "--format", "srt", "-o", str(out)]) == 0
    assert out.read_text() == "1\n00:00:00,140 --> 00:00:00,900\nTHE\n\n2\n00:00:01,260 --> 00:00:02,020\nCAT\n"
    assert cli.main(["transcribe", *tone_files, *args, "--format", "vtt", "-o", str(tmp_path / "subs")]) == 0
    assert sorted(p.name for p in (tmp_path / "subs").iterdir()) == ["first.vtt", "second.vtt"]
    assert (tmp_path / "subs" / "second.vtt").read_text().startswith("WEBVTT\n\n00:00:00.140 --> 00:00:00.340\nA\n")
    assert cli.main(["transcribe", *tone_files, *args, "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    assert [r["text"] for r in json.loads((tmp_path / "r.json").read_text())] == ["THE CAT", "A HAT"]
    # several srt files cannot go to one file
    assert cli.main(["transcribe", *tone_files, *args, "--format", "srt", "-o", str(tmp_path / "r.json")]) == 2
    assert "must be a directory" in capsys.readouterr().err


@requires_flashlight
def test_transcribe_with_an_lm(model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(HfWav2Vec2ForCTC, "forward", lambda self, input_values, **kw: near_tie_forward(input_values))
    sf.write(tmp_path / "a.wav", noise(0.3), SR)
    (tmp_path / "lm.arpa").write_text(TINY_ARPA)
    base = ["transcribe", str(tmp_path / "a.wav"), "--model", str(model_dir)]
    assert cli.main(base) == 0 and capsys.readouterr().out == "THE KAT\n"
    assert cli.main([*base, "--lm", str(tmp_path / "lm.arpa"), "--alpha", "1", "--beta", "0", "--beam_size", "10"]) == 0
    assert capsys.readouterr().out == "THE CAT\n"
    assert cli.main([*base, "--lm", str(tmp_path / "lm.arpa"), "--timestamps", "char"]) == 2
    assert "not available with --lm" in capsys.readouterr().err


def test_one_line_errors_and_exit_statuses(model_dir, tmp_path, capsys):
    sf.write(tmp_path / "a.wav", noise(0.5), SR)
    wav = str(tmp_path / "a.wav")
    cases = [
        (["transcribe", wav, "--model", str(tmp_path / "no-model")], 1, "no such model directory"),
        (["transcribe", str(tmp_path / "gone.wav"), "--model", str(model_dir)], 1, "gone.wav: no such file"),
    ]
    for argv, status, expected in cases:
        assert cli.main(argv) == status, argv
        err = capsys.readouterr().err
        assert expected in err and err.startswith("hf-wav2vec2: error: ") and "Traceback" not in err
    for argv in (["transcribe", wav], ["transcribe", wav, "--model", "m", "--batch_size", "0"], ["nope"], []):
        usage_error(argv, capsys)


def usage_error(argv, capsys) -> str:
    """argparse's usage error for ``argv`` (exit status 2, nothing run): its one error line."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2, argv
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err and captured.err.startswith("usage: hf-wav2vec2")
    return captured.err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["transcribe", "a.wav", "-m", "M", "--lm", "x.arpa"],
            "transcribe: error: argument --lm: no such file: x.arpa",
        ),
        (["transcribe", "a.wav", "-m", "M", "--lm", "."], "argument --lm: not a file: ."),
        (
            ["transcribe", "a.wav", "-m", "M", "--chunk_length", "-1"],
            "argument --chunk_length: must not be negative, got -1",
        ),
        (
            ["transcribe", "a.wav", "-m", "M", "--max_cue_duration", "0"],
            "argument --max_cue_duration: must be positive",
        ),
        (
            ["transcribe", "a.wav", "-m", "M", "--batch_size", "two"],
            "argument --batch_size: invalid positive_int value",
        ),
        (["transcribe", "a.wav", "-m", "M", "--format", "doc"], "argument --format: invalid choice: 'doc'"),
        (["evaluate", "no-data", "-m", "M"], "evaluate: error: argument DATA: no such file or folder: no-data"),
        (["evaluate", ".", "-m", "M", "--show", "-1"], "argument --show: must not be negative, got -1"),
        (["evaluate", ".", "-m", "M", "--max_examples", "0"], "argument --max_examples: must be at least 1, got 0"),
        (["build-lm", "none.txt", "o.arpa"], "build-lm: error: argument TEXT: no such file: none.txt"),
        (["convert", "none.pt", "out"], "convert: error: argument SRC: no such file or folder: none.pt"),
        (["convert", ".", "out", "--dict", "nodict.txt"], "argument --dict: no such file: nodict.txt"),
        (["convert", ".", "out", "--to", "fairseq"], "argument --to: invalid choice: 'fairseq'"),
        (["push", "no-model", "me/x"], "push: error: argument MODEL_DIR: no such directory: no-model"),
        (["push", ".", "me/x", "--wer", "-3"], "argument --wer: must not be negative, got -3"),
    ],
)
def test_bad_values_are_argparse_usage_errors(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert expected in usage_error(argv, capsys)


def test_build_lm_order_is_checked_by_argparse(tmp_path, capsys):
    (tmp_path / "text.txt").write_text("THE CAT\n")
    line = usage_error(["build-lm", str(tmp_path / "text.txt"), str(tmp_path / "o.arpa"), "--order", "1"], capsys)
    assert "argument --order: must be at least 2 (KenLM loads nothing smaller), got 1" in line
    assert not (tmp_path / "o.arpa").exists()


def test_flags_have_one_spelling():
    """Every long option of every subcommand is spelled with underscores, as the training scripts' flags are
    (HfArgumentParser), and no hyphenated alias is left."""
    parser = cli.build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    flags = {
        name: [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
        for name, sub in subcommands.items()
    }
    assert "--batch_size" in flags["transcribe"] and "--dry_run" in flags["push"]  # the parsers were built
    hyphenated = {name: [f for f in found if "-" in f[2:]] for name, found in flags.items()}
    assert not any(hyphenated.values()), hyphenated


# ----------------------------------------------------------------------------------------------- evaluate


def write_csv(path, rows, header="file,text,duration"):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_evaluate_a_labeled_folder_and_a_list(tone_model, tone_files, tmp_path, capsys):
    # the layout of corpora.asterisk.export_prompts: metadata.csv with file,text,duration, paths relative to the folder
    write_csv(tmp_path / "metadata.csv", ["first.wav,THE CAT,3.000", "second.wav,A HAT,3.000"])
    assert cli.main(["evaluate", str(tmp_path), "--model", str(tone_model)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "WER 0.00%  CER 0.00%  (2 utterances, decoder: greedy)\n" and captured.err == ""
    # a path<TAB>transcript list, relative to its folder, with one wrong reference: 1 of 4 words, 3 of 12 characters
    (tmp_path / "refs.txt").write_text("first.wav\tTHE DOG\n\nsecond.wav\ta  hat\n", encoding="utf-8")
    assert cli.main(["evaluate", str(tmp_path / "refs.txt"), "--model", str(tone_model), "--batch_size", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "WER 25.00%  CER 25.00%  (2 utterances, decoder: greedy)",
        tone_files[0],
        "  REF: the dog",
        "  HYP: the cat",
    ]
    assert cli.main(["evaluate", str(tmp_path / "refs.txt"), "--model", str(tone_model), "--show", "0"]) == 0
    assert capsys.readouterr().out == "WER 25.00%  CER 25.00%  (2 utterances, decoder: greedy)\n"
    # metadata.jsonl with the Hub's file_name column, absolute paths, only the first row
    sub = tmp_path / "jsonl"
    sub.mkdir()
    lines = [json.dumps({"file_name": f, "text": t}) for f, t in zip(tone_files, ["THE CAT", "A CAT"], strict=True)]
    (sub / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert cli.main(["evaluate", str(sub), "--model", str(tone_model), "--max_examples", "1", "-q"]) == 0
    assert capsys.readouterr().out == "WER 0.00%  CER 0.00%  (1 utterances, decoder: greedy)\n"


def test_evaluate_json_output(tone_model, tone_files, tmp_path, capsys):
    write_csv(tmp_path / "metadata.csv", ["first.wav,THE DOG", 'second.wav,"A HAT"'], header="file,text")
    out = tmp_path / "reports" / "eval.json"
    assert cli.main(["evaluate", str(tmp_path), "--model", str(tone_model), "--format", "json", "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    report = json.loads(out.read_text())
    assert report["wer"] == pytest.approx(0.25) and report["cer"] == pytest.approx(0.25)
    assert (report["num_utterances"], report["num_failed"], report["decoder"], report["lm"]) == (2, 0, "greedy", None)
    assert report["utterances"] == [
        {"file": tone_files[0], "reference": "the dog", "hypothesis": "the cat", "error": None},
        {"file": tone_files[1], "reference": "a hat", "hypothesis": "a hat", "error": None},
    ]


def test_evaluate_scores_unreadable_files_as_empty_and_warns(tone_model, tone_files, tmp_path, capsys):
    (tmp_path / "bad.wav").write_text("not audio")
    (tmp_path / "list.tsv").write_text("first.wav\tTHE CAT\nbad.wav\tTHE END\n", encoding="utf-8")
    assert cli.main(["evaluate", str(tmp_path / "list.tsv"), "--model", str(tone_model), "--show", "9"]) == 0
    captured = capsys.readouterr()
    # "the end" entirely deleted: 2 of 4 words, 7 of 14 characters
    assert captured.out.splitlines() == [
        "WER 50.00%  CER 50.00%  (2 utterances, decoder: greedy)",
        str(tmp_path / "bad.wav"),
        "  REF: the end",
        "  HYP: ",
    ]
    warnings = captured.err.splitlines()
    assert len(warnings) == 2 and "Traceback" not in captured.err
    assert warnings[0].startswith(f"hf-wav2vec2: warning: {tmp_path / 'bad.wav'}: not a readable audio file")
    assert warnings[1] == "hf-wav2vec2: warning: 1 of 2 files failed"
    (tmp_path / "all-bad.tsv").write_text("bad.wav\tTHE END\n", encoding="utf-8")
    assert cli.main(["evaluate", str(tmp_path / "all-bad.tsv"), "--model", str(tone_model)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("WER 100.00%") and captured.err.endswith("hf-wav2vec2: error: all 1 files failed\n")


def test_evaluate_progress_bar_only_on_a_terminal(tone_model, tone_files, tmp_path, monkeypatch, capsys):
    write_csv(tmp_path / "metadata.csv", ["first.wav,THE CAT"], header="file,text")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert cli.main(["evaluate", str(tmp_path), "--model", str(tone_model)]) == 0
    assert "transcribing" in capsys.readouterr().err
    assert cli.main(["evaluate", str(tmp_path), "--model", str(tone_model), "--quiet"]) == 0
    assert "transcribing" not in capsys.readouterr().err


@requires_flashlight
def test_evaluate_with_an_lm(model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(HfWav2Vec2ForCTC, "forward", lambda self, input_values, **kw: near_tie_forward(input_values))
    sf.write(tmp_path / "a.wav", noise(0.3), SR)
    (tmp_path / "lm.arpa").write_text(TINY_ARPA)
    (tmp_path / "refs.tsv").write_text("a.wav\tTHE CAT\n", encoding="utf-8")
    base = ["evaluate", str(tmp_path / "refs.tsv"), "--model", str(model_dir)]
    assert cli.main(base) == 0  # greedy: THE KAT
    assert capsys.readouterr().out.splitlines()[0] == "WER 50.00%  CER 14.29%  (1 utterances, decoder: greedy)"
    lm_args = ["--lm", str(tmp_path / "lm.arpa"), "--alpha", "1", "--beta", "0", "--beam_size", "10"]
    assert cli.main([*base, *lm_args]) == 0
    assert capsys.readouterr().out == "WER 0.00%  CER 0.00%  (1 utterances, decoder: LM beam search)\n"
    assert cli.main([*base, *lm_args, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["decoder"], report["lm"], report["alpha"], report["beam_size"]) == (
        "LM beam search",
        str(tmp_path / "lm.arpa"),
        1.0,
        10,
    )
    assert report["utterances"][0]["hypothesis"] == "the cat"


def test_evaluate_bad_inputs_are_one_line_errors(model_dir, tmp_path, capsys):
    sf.write(tmp_path / "a.wav", noise(0.5), SR)
    folders = {name: tmp_path / name for name in ("empty", "extra", "blank", "jsonl", "nocol", "gone")}
    for folder in folders.values():
        folder.mkdir()
    write_csv(folders["extra"] / "metadata.csv", ["../a.wav,HELLO, WORLD"], header="file,text")
    write_csv(folders["blank"] / "metadata.csv", ["../a.wav,HELLO", "../a.wav,  "], header="file,text")
    (folders["jsonl"] / "metadata.jsonl").write_text('{"file": "../a.wav", "text": "HI"}\n{oops\n')
    write_csv(folders["nocol"] / "metadata.csv", ["../a.wav,HI"], header="path,text")
    write_csv(folders["gone"] / "metadata.csv", ["nothing.wav,HI"], header="file,text")
    (tmp_path / "no-tab.txt").write_text("a.wav\tHELLO\na.wav HELLO\n")
    (tmp_path / "ok.tsv").write_text("a.wav\tHELLO\n")
    model = ["--model", str(model_dir)]
    ok = str(tmp_path / "ok.tsv")
    cases = [
        ([str(folders["empty"]), *model], 1, "no metadata file"),
        ([str(folders["extra"]), *model], 1, "row 1 does not have as many fields as the header"),
        ([str(folders["blank"]), *model], 1, "1 of 2 transcripts are empty (e.g. row 2"),
        ([str(folders["jsonl"]), *model], 1, "metadata.jsonl: line 2 is not a JSON object"),
        ([str(folders["nocol"]), *model], 1, "has no column(s) ['file']"),
        ([str(folders["gone"]), *model], 1, "none of the 1 listed audio files exists"),
        ([str(tmp_path / "no-tab.txt"), *model], 1, "line 2 is not 'path<TAB>transcript'"),
        ([ok, "--model", str(tmp_path / "no-model")], 1, "no such model directory"),
        ([ok, *model, "--alpha", "1"], 2, "--alpha configure the LM beam search: pass --lm"),
        ([ok, *model, "-o", str(tmp_path)], 2, "is a directory; --output names a file"),
    ]
    for argv, status, expected in cases:
        assert cli.main(["evaluate", *argv]) == status, argv
        captured = capsys.readouterr()
        assert expected in captured.err, (argv, captured.err)
        assert captured.err.startswith("hf-wav2vec2: error: ") and len(captured.err.splitlines()) == 1, captured.err
        assert captured.out == ""
    with pytest.raises(SystemExit) as exit_info:  # argparse: --model is required
        cli.main(["evaluate", ok])
    assert exit_info.value.code == 2


# ----------------------------------------------------------------------------------------------- build-lm


def test_build_lm(tmp_path, capsys):
    (tmp_path / "text.txt").write_text("THE CAT SAT\nTHE CAT ATE\nA HAT\n")
    out = tmp_path / "lm" / "cats.arpa"
    assert cli.main(["build-lm", str(tmp_path / "text.txt"), str(out), "--order", "2"]) == 0
    assert "2-grams" in capsys.readouterr().out
    model = ArpaModel(out)
    assert model.log10_prob("CAT", ["THE"]) > model.log10_prob("HAT", ["THE"])
    (tmp_path / "empty.txt").write_text("\n\n")
    assert cli.main(["build-lm", str(tmp_path / "empty.txt"), str(out)]) == 1
    assert "no words" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- other commands


def test_convert_and_push_are_wired(capsys):
    for name, expected in (("convert", "SRC"), ("push", "REPO_ID")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0 and expected in capsys.readouterr().out


@pytest.mark.parametrize("command", [module.NAME for module in cli.COMMANDS])
def test_every_help_page_renders(command, capsys):
    # argparse %-formats each help text: a bare "%" prints the option's whole dict (or raises) instead of the text
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "usage:" in out
    assert "option_strings" not in out and "%(" not in out


def test_missing_modules_make_commands_unavailable_not_broken(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "hf_wav2vec2.convert", None)  # import fails
    assert cli.main(["convert", str(tmp_path), "b"]) == 1
    assert "the convert command is not available" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "hf_wav2vec2.hub", None)
    assert cli.main(["push", str(tmp_path), "me/b"]) == 1
    assert "the push command is not available" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "hf_wav2vec2.training.pretrain", None)  # import fails
    assert cli.main(["pretrain", "--x"]) == 1
    assert "the pretrain command is not available" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "hf_wav2vec2.training.finetune_classification", None)
    assert cli.main(["finetune-classification", "--x"]) == 1
    assert "the finetune-classification command is not available" in capsys.readouterr().err


def test_a_new_subcommand_is_one_module_in_the_list(monkeypatch, capsys):
    """The pattern the package docstring describes: NAME, HELP, PARENTS, add_arguments, run; listed in COMMANDS."""
    from hf_wav2vec2.cli import common

    seen = []
    hello = types.ModuleType("hf_wav2vec2.cli.hello")
    hello.NAME, hello.HELP, hello.NEEDS_MODELS = "hello", "say hello", False
    hello.PARENTS = (common.PROGRESS,)
    hello.add_arguments = lambda parser: parser.add_argument("--times", type=common.positive_int, default=1)
    hello.run = lambda args: seen.append((args.times, args.quiet)) or 3
    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, hello))
    assert cli.main(["hello", "--times", "2", "-q"]) == 3 and seen == [(2, True)]
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "say hello" in capsys.readouterr().out
    assert "argument --times: must be at least 1" in usage_error(["hello", "--times", "0"], capsys)


@pytest.mark.parametrize(
    "command, module",
    [
        ("finetune", "finetune"),
        ("pretrain", "pretrain"),
        ("finetune-classification", "finetune_classification"),
    ],
)
def test_training_commands_get_the_rest_of_the_command_line(monkeypatch, command, module):
    seen = []
    fake = types.ModuleType(f"hf_wav2vec2.training.{module}")
    fake.main = lambda argv: seen.append(argv) or {"eval_accuracy": 0.5}
    monkeypatch.setitem(sys.modules, f"hf_wav2vec2.training.{module}", fake)
    assert cli.main([command, "--output_dir", "runs/x", "--help"]) == 0
    assert seen == [["--output_dir", "runs/x", "--help"]]


def test_progress_bar_only_on_a_terminal(tone_model, tone_files, monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert cli.main(["transcribe", *tone_files, "--model", str(tone_model)]) == 0
    assert "transcribing" in capsys.readouterr().err
    assert cli.main(["transcribe", *tone_files, "--model", str(tone_model), "--quiet"]) == 0
    assert "transcribing" not in capsys.readouterr().err
