#!/usr/bin/env python
"""Fine-tune wav2vec 2.0 for speech recognition (CTC) with transformers' Trainer.

Examples:

    # a folder of audio with metadata.csv (columns file,text), from a pre-trained checkpoint of this package
    python examples/finetune_ctc.py --model_name_or_path runs/pretrain --train_dir data/train \
        --eval_dir data/test --output_dir runs/ctc --max_steps 13000 --freeze_finetune_updates 10000 \
        --per_device_train_batch_size 8 --eval_strategy steps --eval_steps 1000

    # a transformers checkpoint and a datasets dataset (audio and text columns configurable)
    python examples/finetune_ctc.py --model_name_or_path facebook/wav2vec2-base --dataset_name my/corpus \
        --eval_split_name test --text_column sentence --language es --output_dir runs/ctc

    # a datasets audiofolder (data/es/train/ and data/es/test/, each with metadata.csv: file_name,text), or a
    # folder written by save_to_disk given as --dataset_name; audio is read with soundfile, torchcodec is not needed
    python examples/finetune_ctc.py --model_name_or_path facebook/wav2vec2-base --dataset_name audiofolder \
        --data_dir data/es --eval_split_name test --language es --output_dir runs/ctc-es

    # the Debian Asterisk prompts' fixed 10-minute split (apt-get install asterisk-core-sounds-en-wav)
    python -c "from hf_wav2vec2.corpora import asterisk; print(asterisk.export_all('data/asterisk'))"
    python examples/finetune_ctc.py --model_name_or_path runs/pretrain --train_dir data/asterisk/train \
        --eval_dir data/asterisk/test --text_case upper --output_dir runs/asterisk-10min

    # adapter-only fine-tuning for a new language (MMS recipe): fresh adapters + CTC head, the rest frozen; the
    # output folder is multilingual (adapter.spa.safetensors, nested vocab.json), and --save_adapter_beside_base
    # also adds the language to the base folder (load it with model.load_adapter("spa") / target_lang="spa")
    python examples/finetune_ctc.py --model_name_or_path facebook/mms-1b-all --adapter_lang spa \
        --train_dir data/es/train --eval_dir data/es/test --learning_rate 1e-3 --output_dir runs/mms-spa

    # the randomly initialized baseline
    python examples/finetune_ctc.py --from_scratch --config_preset base --train_dir ... --output_dir ...

Beside the model the output directory gets text_normalization.json (which `hf-wav2vec2 evaluate` applies, so it
reports the WER / CER printed here), the pipeline code (pipeline(model=dir, trust_remote_code=True) works without
this package), card_info.json (language, base model, training data and results for the model card) and
training_curves.png.

Bad data is reported before training starts: transcripts that would train on <unk> (characters outside a given
--vocab_file) or on nothing (empty or punctuation-only after normalization) are counted in one warning with example
files and kept unless --drop_bad_transcripts is given; audio files that cannot be decoded (truncated, corrupt) are
left out with a warning, and more than --max_bad_audio_fraction (default 0.05) of a split stops the run.

Run with --help for every option; the logic lives in hf_wav2vec2.training.finetune.
"""

import sys
from pathlib import Path

try:
    from hf_wav2vec2.training.finetune import main
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hf_wav2vec2.training.finetune import main

if __name__ == "__main__":
    main()
