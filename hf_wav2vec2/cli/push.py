"""``hf-wav2vec2 push MODEL_DIR REPO_ID``: publish a model folder on the Hub (:func:`hf_wav2vec2.hub.push_to_hub`),
or with ``--dry_run DIR`` only write the folder that would be uploaded. ``--adapter_lang LANG`` publishes one MMS
language only (:func:`hf_wav2vec2.hub.push_adapter`): its adapter file, and its vocabulary merged into the existing
repository's ``vocab.json``."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from . import common
from .common import CommandError, unavailable

NAME = "push"
HELP = "publish a model directory on the Hub"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_input(
        parser, "model_dir", common.existing_directory, "directory saved by hf-wav2vec2 (model + processor)"
    )
    parser.add_argument("repo_id", metavar="REPO_ID", help="Hub repository, owner/name")
    parser.add_argument(
        "--dry_run",
        dest="dry_run",
        metavar="DIR",
        default=None,
        help="only write the folder that would be uploaded into DIR (new or empty)",
    )
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--token", default=None, help="Hub token (default: the logged-in one)")
    parser.add_argument("--commit_message", default=None)
    parser.add_argument(
        "--adapter_lang",
        default=None,
        metavar="LANG",
        help="upload only MODEL_DIR/adapter.LANG.safetensors (and LANG's vocabulary) to the existing "
        "multilingual REPO_ID; the card and every other remote file are left as they are",
    )
    card = parser.add_argument_group("model card")
    # defaults None: the model directory's card_info.json (written by fine-tuning) fills what is not given
    card.add_argument(
        "--wer", type=common.non_negative_float, default=None, help="word error rate in percent on --dataset"
    )
    card.add_argument(
        "--cer", type=common.non_negative_float, default=None, help="character error rate in percent on --dataset"
    )
    card.add_argument(
        "--accuracy",
        type=common.non_negative_float,
        default=None,
        help="accuracy in percent on --dataset (audio classifiers, instead of --wer/--cer)",
    )
    card.add_argument(
        "--dataset",
        default=None,
        metavar="ID",
        help="Hub id of the evaluation dataset (librispeech_asr); without it the result is in the "
        "card's table but not in the Hub model-index",
    )
    card.add_argument("--dataset_name", default=None, help="display name of the evaluation dataset")
    card.add_argument("--dataset_config", default=None, help="dataset configuration (e.g. clean)")
    card.add_argument("--split", default="test", help="evaluated split (default: test)")
    card.add_argument("--decoding", default=None, help="how the WER was obtained (e.g. 'greedy CTC, no LM')")
    card.add_argument(
        "--language", default=None, help="language code(s), comma-separated (default: from card_info.json, else en)"
    )
    card.add_argument("--license", default=None, help="(default: from card_info.json, else apache-2.0)")
    card.add_argument("--train_dataset", action="append", default=[], metavar="ID", help="Hub id of a training dataset")
    card.add_argument("--model_name", default=None, help="name in the card (default: the repository name)")
    card.add_argument("--base_model", default=None, help="Hub id of the model this one derives from")
    card.add_argument("--description", default=None, help="first paragraph of the card")
    card.add_argument("--training_data", default=None, help="text of the card's training data section")


def card_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~hf_wav2vec2.hub.CardInfo` fields the flags give (None where a flag is absent; the model
    directory's card_info.json then decides)."""
    from ..hub import CardInfo, Result

    results = []
    if args.wer is not None or args.cer is not None or args.accuracy is not None:
        results.append(
            Result(
                dataset_type=args.dataset,
                dataset_name=args.dataset_name,
                split=args.split,
                config=args.dataset_config,
                wer=args.wer,
                cer=args.cer,
                decoding=args.decoding,
                accuracy=args.accuracy,
            )
        )
    languages = [code.strip() for code in args.language.split(",") if code.strip()] if args.language else None
    return CardInfo(
        language=languages[0] if languages and len(languages) == 1 else languages,
        license=args.license,
        datasets=list(args.train_dataset),
        results=results,
        model_name=args.model_name,
        base_model=args.base_model,
        description=args.description,
        training_data=args.training_data,
    )


# flags that only describe the card, which --adapter_lang leaves alone (with their defaults)
CARD_FLAGS = {
    "wer": None,
    "cer": None,
    "accuracy": None,
    "dataset": None,
    "dataset_name": None,
    "dataset_config": None,
    "split": "test",
    "decoding": None,
    "language": None,
    "license": None,
    "train_dataset": [],
    "model_name": None,
    "base_model": None,
    "description": None,
    "training_data": None,
    "private": False,
}


def _upload_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The flags a whole-model and a one-language upload share, as keyword arguments of the hub functions."""
    return {"dry_run_dir": args.dry_run, "token": args.token, "commit_message": args.commit_message}


def _push_adapter(args: argparse.Namespace) -> int:
    from ..hub import PublishError, RemoteNotCheckedWarning, push_adapter

    given = [name for name, default in CARD_FLAGS.items() if getattr(args, name) != default]
    if given:
        raise CommandError(
            f"--adapter_lang uploads one language's files only; it takes no --{', --'.join(given)}", status=2
        )
    with warnings.catch_warnings(record=True) as caught, common.library_errors(PublishError):
        warnings.simplefilter("always", RemoteNotCheckedWarning)
        result = push_adapter(args.model_dir, args.repo_id, args.adapter_lang, **_upload_settings(args))
    for warning in caught:  # an offline dry run says, in one line, what it could not check
        if issubclass(warning.category, RemoteNotCheckedWarning):
            common.print_warning(str(warning.message))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if args.dry_run:
        print(f"wrote the {args.adapter_lang} files for {args.repo_id} to {result} (nothing uploaded)")
    else:
        print(
            f"uploaded the {args.adapter_lang} adapter to https://huggingface.co/{args.repo_id} "
            f"({getattr(result, 'commit_url', result)})"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        from ..hub import PublishError, push_to_hub
    except ImportError as error:
        raise unavailable(NAME, error) from None
    common.quiet_transformers()  # the Hub's upload bars stay: a large upload takes minutes
    if args.adapter_lang is not None:
        return _push_adapter(args)
    if (args.wer is not None or args.cer is not None or args.accuracy is not None) and not args.dataset:
        common.print_warning("no --dataset: the results go into the card's table but not into the Hub model-index")
    with common.library_errors(PublishError, folder=args.model_dir):
        result = push_to_hub(
            args.model_dir,
            args.repo_id,
            card=card_from_args(args),
            private=args.private,
            **_upload_settings(args),
        )
    if args.dry_run:
        print(f"wrote the upload folder for {args.repo_id} to {result} (nothing uploaded)")
    else:
        print(f"uploaded to https://huggingface.co/{args.repo_id} ({getattr(result, 'commit_url', result)})")
    return 0
