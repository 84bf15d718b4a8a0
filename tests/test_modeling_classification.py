"""The classification, frame-labelling and x-vector heads: parity with transformers' Wav2Vec2ForSequenceClassification,
Wav2Vec2ForAudioFrameClassification and Wav2Vec2ForXVector (their checkpoints load here with no missing or unexpected
keys, outputs and losses equal in fp32 <= 1e-5, exported back), padding, losses by problem_type, freezing, the Auto
classes, remote code in a fresh process without the package, and the speaker-verification helpers."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers
from conftest import BASE_LIKE, LARGE_LIKE, NO_DROPOUT, TINY, tiny_config
from transformers import AutoModelForAudioClassification, AutoModelForAudioFrameClassification, AutoModelForAudioXVector

from hf_wav2vec2 import (
    HfWav2Vec2FeatureExtractor,
    HfWav2Vec2ForAudioFrameClassification,
    HfWav2Vec2ForSequenceClassification,
    HfWav2Vec2ForXVector,
    interop,
    speaker_similarity,
    verify_speakers,
)
from hf_wav2vec2.interop import to_transformers

TOL = 1e-5
VARIANTS = {"base": BASE_LIKE, "large": LARGE_LIKE}
# small heads; initializer_range 0.2 keeps the tiny random x-vector logits far from 0, where their cosine (in the
# AMSoftmax loss) would amplify rounding differences of the two implementations
HEADS = dict(
    num_labels=3,
    classifier_proj_size=8,
    tdnn_dim=(8, 8, 12),
    tdnn_kernel=(3, 3, 1),
    tdnn_dilation=(1, 2, 1),
    xvector_output_dim=6,
    initializer_range=0.2,
)
PAIRS = {
    "sequence": (HfWav2Vec2ForSequenceClassification, transformers.Wav2Vec2ForSequenceClassification),
    "frame": (HfWav2Vec2ForAudioFrameClassification, transformers.Wav2Vec2ForAudioFrameClassification),
    "xvector": (HfWav2Vec2ForXVector, transformers.Wav2Vec2ForXVector),
}
EXPORT_NAMES = {ours.__name__: theirs.__name__ for ours, theirs in PAIRS.values()}


def their_config(variant, **overrides):
    return transformers.Wav2Vec2Config(**{**VARIANTS[variant], **NO_DROPOUT, **HEADS, **overrides})


def our_config(variant="base", **overrides):
    return tiny_config(variant, **{**NO_DROPOUT, **HEADS, **overrides})


def max_diff(a, b):
    """The largest difference, against the reference's largest value where that is over 1 (float32 rounding)."""
    return (a.float() - b.float()).abs().max().item() / max(1.0, b.float().abs().max().item())


def load_clean(cls, path):
    model, info = cls.from_pretrained(path, output_loading_info=True)
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        assert not info.get(kind), (kind, info[kind])
    return model.eval()


def batch_and_mask(lengths=(6000, 4100)):
    values = torch.randn(len(lengths), max(lengths))
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
        values[i, n:] = 0.0
    return values, mask


def labels_for(head, model, values):
    if head != "frame":
        return torch.tensor([0, 2])
    with torch.no_grad():
        frames = model(values).logits.shape[1]
    return F.one_hot(torch.randint(0, 3, (values.shape[0], frames)), 3)


def compare(mine, theirs):
    assert max_diff(mine.logits, theirs.logits) <= TOL
    assert abs(float(mine.loss) - float(theirs.loss)) <= TOL * max(1.0, abs(float(theirs.loss)))
    if hasattr(theirs, "embeddings"):
        assert max_diff(mine.embeddings, theirs.embeddings) <= TOL
    assert len(mine.hidden_states) == len(theirs.hidden_states)
    for a, b in zip(mine.hidden_states, theirs.hidden_states, strict=True):
        assert max_diff(a, b) <= TOL


# --------------------------------------------------------------------------------------------------------------------
# Parity with transformers, both ways
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["last-layer", "weighted-layer-sum"])
@pytest.mark.parametrize("variant", ["base", "large"])
@pytest.mark.parametrize("head", sorted(PAIRS))
def test_transformers_checkpoint_loads_with_equal_outputs_and_losses(tmp_path, head, variant, weighted):
    ours_cls, theirs_cls = PAIRS[head]
    reference = theirs_cls(their_config(variant, use_weighted_layer_sum=weighted)).eval()
    reference.save_pretrained(tmp_path)
    ours = load_clean(ours_cls, tmp_path)
    assert ours.config.model_type == "hf_wav2vec2"
    for name in ("use_weighted_layer_sum", "classifier_proj_size", "xvector_output_dim", "num_labels"):
        assert getattr(ours.config, name) == getattr(reference.config, name), name
    assert list(ours.config.tdnn_dim) == list(reference.config.tdnn_dim)
    values, mask = batch_and_mask()
    labels = labels_for(head, reference, values)
    # a padded batch too, except for the x-vector head, whose padding transformers pools differently (next test)
    for kwargs in ({}, {"attention_mask": mask}) if head != "xvector" else ({},):
        with torch.no_grad():
            compare(
                ours(values, labels=labels, output_hidden_states=True, **kwargs),
                reference(values, labels=labels, output_hidden_states=True, **kwargs),
            )


@pytest.mark.parametrize("dilation", [(1, 1, 1), (1, 2, 1)])
def test_xvector_padded_batch_pools_real_frames_only(tmp_path, dilation):
    """Padded clips get the embedding transformers gives each clip alone. transformers' own padded batch agrees only
    without TDNN dilation: it counts the pooled frames without it, and so also pools frames computed from padding."""
    reference = transformers.Wav2Vec2ForXVector(their_config("large", tdnn_dilation=dilation)).eval()
    reference.save_pretrained(tmp_path)
    ours = load_clean(HfWav2Vec2ForXVector, tmp_path)
    lengths = (6000, 4100)
    values, mask = batch_and_mask(lengths)
    with torch.no_grad():
        batched = ours(values, attention_mask=mask)
        theirs_batched = reference(values, attention_mask=mask)
        for i, n in enumerate(lengths):
            alone = reference(values[i : i + 1, :n])
            assert max_diff(batched.embeddings[i], alone.embeddings[0]) <= TOL
            assert max_diff(batched.logits[i], alone.logits[0]) <= TOL
    agrees = max_diff(batched.embeddings, theirs_batched.embeddings) <= TOL
    assert agrees == (dilation == (1, 1, 1))


@pytest.mark.parametrize("head", sorted(PAIRS))
def test_export_back_to_transformers(tmp_path, head):
    assert interop.TRANSFORMERS_CLASSES[PAIRS[head][0].__name__] == PAIRS[head][1].__name__
    ours_cls, theirs_cls = PAIRS[head]
    labels_map = {0: "zero", 1: "one", 2: "two"}
    ours = ours_cls(
        our_config(
            "large", use_weighted_layer_sum=True, id2label=labels_map, label2id={v: k for k, v in labels_map.items()}
        )
    ).eval()
    exported = to_transformers(ours)
    assert type(exported) is theirs_cls
    exported.save_pretrained(tmp_path)
    reloaded = load_clean(theirs_cls, tmp_path)  # plain transformers reads the folder
    assert reloaded.config.id2label == labels_map and reloaded.config.use_weighted_layer_sum
    values, mask = batch_and_mask()
    labels = labels_for(head, ours, values)
    kwargs = {} if head == "xvector" else {"attention_mask": mask}  # padded x-vectors: see the test above
    with torch.no_grad():
        compare(
            ours(values, labels=labels, output_hidden_states=True, **kwargs),
            reloaded(values, labels=labels, output_hidden_states=True, **kwargs),
        )


def test_weighted_layer_sum_is_learned_and_hidden_states_are_returned_only_when_asked():
    torch.manual_seed(1)
    model = HfWav2Vec2ForSequenceClassification(our_config(use_weighted_layer_sum=True)).eval()
    assert model.layer_weights.shape == (TINY["num_hidden_layers"] + 1,)
    values = torch.randn(1, 4000)
    with torch.no_grad():
        plain = model(values)
        assert plain.hidden_states is None  # computed for the sum, returned only when asked (transformers 5)
        model.layer_weights.copy_(torch.tensor([-50.0, -50.0, 50.0]))  # all weight on the last layer's output
        last_only = model(values, output_hidden_states=True)
        expected = model.classifier(model.projector(last_only.hidden_states[-1]).mean(1))
    assert max_diff(last_only.logits, expected) <= TOL
    assert max_diff(plain.logits, last_only.logits) > 1e-4


def test_layer_weights_start_equal_when_the_checkpoint_has_none(tmp_path):
    # transformers 5 leaves them uninitialized memory in this case (values such as 4.9e+30)
    transformers.Wav2Vec2Model(their_config("base")).save_pretrained(tmp_path)
    for cls in (HfWav2Vec2ForSequenceClassification, HfWav2Vec2ForAudioFrameClassification, HfWav2Vec2ForXVector):
        model = cls.from_pretrained(tmp_path, use_weighted_layer_sum=True)
        layers = TINY["num_hidden_layers"] + 1
        assert torch.equal(model.layer_weights.detach(), torch.full((layers,), 1.0 / layers)), cls.__name__
        assert torch.isfinite(model(torch.randn(1, 4000)).logits).all()


# --------------------------------------------------------------------------------------------------------------------
# Padding
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["last-layer", "weighted-layer-sum"])
def test_padded_batch_equals_one_by_one(weighted):
    # layer-norm conv stack: with the attention mask nothing of the padding reaches the real frames
    config = our_config("large", use_weighted_layer_sum=weighted)
    lengths = (6000, 4100, 3300)
    values, mask = batch_and_mask(lengths)
    for cls in (HfWav2Vec2ForSequenceClassification, HfWav2Vec2ForXVector, HfWav2Vec2ForAudioFrameClassification):
        model = cls(config).eval()
        with torch.no_grad():
            batched = model(values, attention_mask=mask)
            for i, n in enumerate(lengths):
                alone = model(values[i : i + 1, :n])
                if cls is HfWav2Vec2ForAudioFrameClassification:
                    frames = alone.logits.shape[1]
                    assert max_diff(batched.logits[i, :frames], alone.logits[0]) <= TOL, cls.__name__
                else:
                    assert max_diff(batched.logits[i], alone.logits[0]) <= TOL, cls.__name__
                if cls is HfWav2Vec2ForXVector:
                    assert max_diff(batched.embeddings[i], alone.embeddings[0]) <= TOL


def test_without_a_mask_padding_is_pooled():
    """The contrast of the test above: the mask is what keeps padding frames out of the mean."""
    model = HfWav2Vec2ForSequenceClassification(our_config("large")).eval()
    values, _ = batch_and_mask((6000, 3000))
    with torch.no_grad():
        unmasked = model(values).logits[1]
        alone = model(values[1:, :3000]).logits[0]
    assert max_diff(unmasked, alone) > 1e-4


# --------------------------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------------------------


def test_sequence_losses_follow_problem_type():
    values = torch.randn(2, 4000)
    single = HfWav2Vec2ForSequenceClassification(our_config()).eval()
    with torch.no_grad():
        out = single(values, labels=torch.tensor([2, 0]))
    assert torch.allclose(out.loss, F.cross_entropy(out.logits, torch.tensor([2, 0])))

    multi_hot = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    with torch.no_grad():
        out = single(values, labels=multi_hot)  # float labels: multi-label without a problem type
    assert torch.allclose(out.loss, F.binary_cross_entropy_with_logits(out.logits, multi_hot))

    regression = HfWav2Vec2ForSequenceClassification(our_config(num_labels=1)).eval()
    targets = torch.tensor([0.5, -1.5])
    with torch.no_grad():
        out = regression(values, labels=targets)
    assert out.logits.shape == (2, 1)
    assert torch.allclose(out.loss, F.mse_loss(out.logits[:, 0], targets))

    forced = HfWav2Vec2ForSequenceClassification(our_config(problem_type="multi_label_classification")).eval()
    with torch.no_grad():
        out = forced(values, labels=multi_hot.long())  # integer 0/1 labels, but the config says multi-label
    assert torch.allclose(out.loss, F.binary_cross_entropy_with_logits(out.logits, multi_hot))


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.tensor([0, 3]), r"class ids must lie in \[0, num_labels=3\), got ids from 0 to 3"),
        (torch.tensor([0, 1, 2]), r"one integer class id per clip \(2,\)"),
        (torch.ones(2, 4), r"multi-label classification needs labels of shape \(2, 3\)"),
    ],
)
def test_bad_sequence_labels_are_one_line_errors(labels, message):
    model = HfWav2Vec2ForSequenceClassification(our_config()).eval()
    with pytest.raises(ValueError, match=message) as error:
        model(torch.randn(2, 4000), labels=labels)
    assert "\n" not in str(error.value)


def test_frame_losses():
    model = HfWav2Vec2ForAudioFrameClassification(our_config("large")).eval()
    values, mask = batch_and_mask((6000, 3000))
    with torch.no_grad():
        logits = model(values, attention_mask=mask).logits
    real = model._frame_mask(mask, logits.shape[1])
    assert real.sum(1).tolist() == [int(model._get_feat_extract_output_lengths(torch.tensor(n))) for n in (6000, 3000)]
    ids = torch.randint(0, 3, real.shape)
    ids[0, 0] = -100  # ignored, as are the padding frames
    with torch.no_grad():
        loss = model(values, attention_mask=mask, labels=ids).loss
    keep = real & (ids != -100)
    assert torch.allclose(loss, F.cross_entropy(logits[keep], ids[keep]))

    multi_hot = (torch.rand(*real.shape, 3) > 0.5).long()
    model.config.problem_type = "multi_label_classification"  # e.g. diarization: several speakers at once
    with torch.no_grad():
        loss = model(values, attention_mask=mask, labels=multi_hot).loss
    assert torch.allclose(loss, F.binary_cross_entropy_with_logits(logits[real], multi_hot[real].float()))
    with pytest.raises(ValueError, match=r"frame labels must be \(2, \d+, 3\) one-/multi-hot or \(2, \d+\) class ids"):
        model(values, attention_mask=mask, labels=torch.zeros(2, 5, 3))


def test_amsoftmax_loss_equals_transformers():
    from transformers.models.wav2vec2.modeling_wav2vec2 import AMSoftmaxLoss as TheirLoss

    from hf_wav2vec2.modeling_hf_wav2vec2_classification import AMSoftmaxLoss

    theirs, ours = TheirLoss(6, 4), AMSoftmaxLoss(6, 4)
    ours.load_state_dict(theirs.state_dict())
    hidden, labels = torch.randn(5, 6), torch.tensor([0, 3, 1, 1, 2])
    with torch.no_grad():
        assert abs(float(ours(hidden, labels)) - float(theirs(hidden, labels))) <= TOL


def test_xvector_single_tdnn_frame_and_too_short_input():
    model = HfWav2Vec2ForXVector(our_config("large")).eval()
    config = model.config  # encoder frames for one TDNN frame: each layer needs dilation * (kernel - 1) more
    context = 1 + sum(d * (k - 1) for k, d in zip(config.tdnn_kernel, config.tdnn_dilation, strict=True))
    ratio, field = model.config.inputs_to_logits_ratio, model.config.receptive_field
    shortest = field + (context - 1) * ratio
    with torch.no_grad():
        out = model(torch.randn(1, shortest))
    assert torch.isfinite(out.embeddings).all()  # one frame: standard deviation 0, not NaN
    with pytest.raises(ValueError, match=f"at least {shortest} samples of real audio"):
        model(torch.randn(1, shortest - ratio))


@pytest.mark.parametrize(
    "cls, change, message",
    [
        (
            HfWav2Vec2ForXVector,
            dict(tdnn_kernel=(3, 3)),
            "tdnn_dim, tdnn_kernel and tdnn_dilation must be non-empty and of equal length, got 3, 2, 3",
        ),
        (HfWav2Vec2ForXVector, dict(tdnn_dilation=(1, 0, 1)), r"config.tdnn_dilation must hold positive integers"),
        (HfWav2Vec2ForXVector, dict(xvector_output_dim=0), "config.xvector_output_dim must be a positive integer"),
        (HfWav2Vec2ForSequenceClassification, dict(classifier_proj_size=0), "classifier_proj_size must be a positive"),
        (HfWav2Vec2ForSequenceClassification, dict(problem_type="ranking"), "config.problem_type must be one of"),
    ],
)
def test_inconsistent_head_configs_are_one_line_errors(cls, change, message):
    with pytest.raises(ValueError, match=message) as error:
        cls(our_config(**change))
    assert str(error.value).startswith(cls.__name__) and "\n" not in str(error.value)


# --------------------------------------------------------------------------------------------------------------------
# Freezing, Auto classes, remote code
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", [HfWav2Vec2ForSequenceClassification, HfWav2Vec2ForAudioFrameClassification, HfWav2Vec2ForXVector]
)
def test_freezing(cls):
    model = cls(our_config(use_weighted_layer_sum=True))
    model.freeze_feature_encoder()
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {name for name, _ in model.named_parameters() if name.startswith("wav2vec2.feature_extractor.")}
    model.freeze_base_model()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and not any(name.startswith("wav2vec2.") for name in trainable)
    assert "layer_weights" in trainable
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    labels = torch.tensor([1]) if cls is not HfWav2Vec2ForAudioFrameClassification else None
    out = model.train()(torch.randn(1, 4000), labels=labels)
    (out.loss if labels is not None else out.logits.square().mean()).backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])}
    assert changed and changed <= trainable


def test_auto_classes(tmp_path):
    for auto, cls in (
        (AutoModelForAudioClassification, HfWav2Vec2ForSequenceClassification),
        (AutoModelForAudioFrameClassification, HfWav2Vec2ForAudioFrameClassification),
        (AutoModelForAudioXVector, HfWav2Vec2ForXVector),
    ):
        cls(our_config()).save_pretrained(tmp_path / cls.__name__)
        saved = json.loads((tmp_path / cls.__name__ / "config.json").read_text())
        assert saved["auto_map"][auto.__name__] == f"modeling_hf_wav2vec2_classification.{cls.__name__}"
        assert (tmp_path / cls.__name__ / "modeling_hf_wav2vec2_classification.py").is_file()
        assert type(auto.from_pretrained(tmp_path / cls.__name__)) is cls
        # transformers' own checkpoints keep transformers' class under the Auto class
        theirs = getattr(transformers, EXPORT_NAMES[cls.__name__])
        theirs(their_config("base")).save_pretrained(tmp_path / theirs.__name__)
        assert type(auto.from_pretrained(tmp_path / theirs.__name__)) is theirs


REMOTE_CODE = textwrap.dedent(
    """
    import json, sys
    sys.modules["hf_wav2vec2"] = None  # the package is installed: only the folders' code may be used
    import numpy as np, torch
    from transformers import (AutoModelForAudioClassification, AutoModelForAudioFrameClassification,
                              AutoModelForAudioXVector, pipeline)

    root, audio_file, out_file = sys.argv[1:]
    audio = torch.from_numpy(np.load(audio_file))[None]
    result = {}
    for name, auto in (("sequence", AutoModelForAudioClassification), ("frame", AutoModelForAudioFrameClassification),
                       ("xvector", AutoModelForAudioXVector)):
        model = auto.from_pretrained(f"{root}/{name}", trust_remote_code=True).eval()
        with torch.no_grad():
            out = model(audio)
        result[name] = {"module": type(model).__module__, "logits": out.logits.tolist(),
                        "embeddings": None if out.get("embeddings") is None else out.embeddings.tolist()}
    classifier = pipeline("audio-classification", model=f"{root}/sequence", trust_remote_code=True)
    result["pipeline"] = classifier(audio[0].numpy(), top_k=None)
    result["loaded"] = any(m.split(".")[0] == "hf_wav2vec2" for m in sys.modules if sys.modules[m] is not None)
    with open(out_file, "w") as f:
        json.dump(result, f)
    """
)


def test_remote_code_loads_in_a_fresh_process_without_the_package(tmp_path):
    models = {}
    for name, (cls, _) in PAIRS.items():
        models[name] = cls(
            our_config("large", id2label={0: "yes", 1: "no", 2: "up"}, label2id={"yes": 0, "no": 1, "up": 2})
        ).eval()
        models[name].save_pretrained(tmp_path / name)
    HfWav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(tmp_path / "sequence")
    audio = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    np.save(tmp_path / "audio.npy", audio)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    (tmp_path / "check.py").write_text(REMOTE_CODE)
    completed = subprocess.run(
        [sys.executable, "check.py", str(tmp_path), str(tmp_path / "audio.npy"), str(tmp_path / "out.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((tmp_path / "out.json").read_text())
    assert not result["loaded"]
    inputs = torch.from_numpy(audio)[None]
    for name, model in models.items():
        assert result[name]["module"].startswith("transformers_modules"), result[name]["module"]
        with torch.no_grad():
            out = model(inputs)
        assert max_diff(torch.tensor(result[name]["logits"]), out.logits) <= TOL
        if name == "xvector":
            assert max_diff(torch.tensor(result[name]["embeddings"]), out.embeddings) <= TOL
    with torch.no_grad():
        extracted = HfWav2Vec2FeatureExtractor()(audio, sampling_rate=16000, return_tensors="pt").input_values
        probs = models["sequence"](extracted).logits[0].softmax(-1)
    best = int(probs.argmax())
    assert result["pipeline"][0]["label"] == models["sequence"].config.id2label[best]
    assert abs(result["pipeline"][0]["score"] - float(probs[best])) <= 1e-5


# --------------------------------------------------------------------------------------------------------------------
# Speaker verification
# --------------------------------------------------------------------------------------------------------------------


def test_speaker_similarity_and_verification():
    a, b = torch.randn(4, 6), torch.randn(4, 6)
    assert torch.allclose(speaker_similarity(a, b), F.cosine_similarity(a, b, dim=-1), atol=1e-6)
    assert torch.allclose(speaker_similarity(a, 3 * a), torch.ones(4), atol=1e-6)  # scale does not matter
    assert torch.allclose(speaker_similarity(a[0], -a[0]), torch.tensor(-1.0), atol=1e-6)
    b[1] = 2 * a[1]
    scores, same = verify_speakers(a, b, threshold=0.9)
    assert same.dtype == torch.bool and bool(same[1])
    assert same.tolist() == (scores >= 0.9).tolist()
    with pytest.raises(ValueError, match=r"threshold is a cosine similarity and must lie in \[-1, 1\], got 1.5"):
        verify_speakers(a, b, threshold=1.5)
    with pytest.raises(ValueError, match="embeddings differ in size: 6 and 5"):
        speaker_similarity(a, torch.randn(4, 5))
