#!/usr/bin/env python
"""Fine-tune wav2vec 2.0 for audio classification (one label per clip) with transformers' Trainer.

Examples:

    # a folder of clips with metadata.csv (columns file,label), from a transformers checkpoint
    python examples/finetune_classification.py --model_name_or_path facebook/wav2vec2-base \
        --train_dir data/kws/train --eval_dir data/kws/test --output_dir runs/kws \
        --num_train_epochs 5 --per_device_train_batch_size 32 --learning_rate 3e-5 --eval_strategy epoch

    # a linear probe: the pre-trained encoder frozen, a learned weighted sum of its layers classified
    python examples/finetune_classification.py --model_name_or_path runs/pretrain --freeze_base_model true \
        --use_weighted_layer_sum true --train_dir ... --eval_dir ... --output_dir runs/probe --learning_rate 1e-3

    # a datasets dataset with a ClassLabel column (its names become the model's labels)
    python examples/finetune_classification.py --model_name_or_path facebook/wav2vec2-base \
        --dataset_name my/commands --eval_split_name test --label_column intent --output_dir runs/intent

    # the randomly initialized baseline
    python examples/finetune_classification.py --from_scratch --config_preset tiny --train_dir ... --output_dir ...

The output directory holds the model (labels in config.json), its feature extractor and the metrics
(all_results.json: eval_accuracy, per-label accuracy); then

    pipeline("audio-classification", model="runs/kws")("clip.wav", top_k=3)

Run with --help for every option; the logic lives in hf_wav2vec2.training.finetune_classification.
"""

import sys
from pathlib import Path

try:
    from hf_wav2vec2.training.finetune_classification import main
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hf_wav2vec2.training.finetune_classification import main

if __name__ == "__main__":
    main()
