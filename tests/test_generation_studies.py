"""Half-image generation, two-stage fine-tuning and ICL/calibration helpers (plumbing on the tiny model)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from liftnb import LIFTClassifier
from liftnb.paper import half_image, icl_calibration, runs, two_stage
from liftnb.finetune import Callback, FitConfig
from liftnb.models import TINY_RANDOM, load_lm
from liftnb.predict import Sampling

TINY = FitConfig(epochs=1, batch_size=16, precision="fp32", train_layers=1)


def test_half_image_text_round_trip_and_malformed_answers():
    task = half_image.HalfImage(side=4, max_value=16.0)
    image = np.array([[0, 16, 8, 4, 2, 0, 16, 16, 1, 2, 3, 4, 16, 0, 0, 8]])
    levels = task.quantise(image)[0]
    assert levels.min() >= 0 and levels.max() == 9 and task.half == 8
    prompt, answer = task.prompt(levels[:8], 3), task.answer(levels[8:])
    assert "digit 3" in prompt and prompt.endswith("###") and answer.endswith("@@@")
    parsed, status = task.parse(answer)
    assert status == "ok" and (parsed == levels[8:]).all()
    assert task.parse("12@@@")[1] == "short" and task.parse("123456789@@@")[1] == "long"
    assert task.parse("no pixels")[1] == "empty" and len(task.parse("12")[0]) == 8
    with pytest.raises(ValueError, match="a 4x4 image has 16"):
        task.quantise(np.zeros((1, 10)))


def test_half_image_generator_and_baselines_on_the_tiny_model():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 17, size=(12, 16))
    labels = np.arange(12) % 2
    task = half_image.HalfImage(side=4, max_value=16.0)
    two_epochs = FitConfig(epochs=2, batch_size=16, precision="fp32", train_layers=1)
    generator = half_image.HalfImageGenerator(task, model=TINY_RANDOM, config=two_epochs).fit(
        images, labels, images[:4], labels[:4])
    history = generator.history_
    assert [e["epoch"] for e in history.epochs] == [1, 2] and history.best_epoch in (1, 2)
    losses = [e["val_loss"] for e in history.epochs]
    assert history.best_epoch == 1 + int(np.argmin(losses))  # the lowest validation loss, the earlier of a tie
    completed, status, completions = generator.complete(images[:3], labels[:3])
    assert completed.shape == (3, 16) and len(status) == 3 and len(completions) == 3
    assert (completed[:, :8] == task.quantise(images[:3])[:, :8]).all()  # the given top half is kept
    for row, state, completion in zip(completed, status, completions):
        bottom, parsed_state = task.parse(completion)
        assert (row[8:] == bottom).all() and state == parsed_state
        assert set(completion) <= set("0123456789@"), completion  # constrained decoding: pixels and the terminator
    sampled, sampled_status, texts = generator.complete(images[:3], labels[:3], Sampling(n=2, seed=1))
    assert sampled.shape == (3, 2, 16) and [len(s) for s in sampled_status] == [2, 2, 2]
    assert (sampled[:, :, :8] == task.quantise(images[:3])[:, None, :8]).all()
    for row, states, pair in zip(sampled, sampled_status, texts):
        for image, state, completion in zip(row, states, pair):
            assert set(completion) <= set("0123456789@"), completion
            bottom, parsed_state = task.parse(completion)
            assert (image[8:] == bottom).all() and state == parsed_state
    again = generator.complete(images[:3], labels[:3], Sampling(n=2, seed=1))
    assert (again[0] == sampled).all() and again[2] == texts  # seeded: the same samples
    levels = task.quantise(images)
    nn = half_image.nearest_neighbour_bottoms(levels, levels[:3], 8)
    assert (nn == levels[:3, 8:]).all()  # its own top half is the nearest
    means = half_image.class_mean_bottoms(levels, labels, [0, 1], 8)
    assert np.allclose(means[0], levels[labels == 0, 8:].mean(0))
    assert half_image.bottom_mse(levels[:3], np.hstack([levels[:3, :8], nn]), 8) == 0


class _PixelsByTemperature:
    """A stand-in generator: every sampled pixel equals round(10 * temperature) - 5, so a reader can tell them apart."""

    def __init__(self):
        self.calls = []

    def complete(self, images, labels, sampling):
        self.calls.append(sampling)
        value = round(10 * sampling.temperature) - 5
        return np.full((len(images), sampling.n, 4), value), None, None


class _ReaderOf:
    """A stand-in reader: right on an image whose pixels all equal `pixel`, wrong otherwise."""

    def __init__(self, *pixels):
        self.pixels = pixels

    def score(self, flat, labels):
        assert len(flat) == len(labels)
        return float(np.mean([row[0] in self.pixels for row in flat]))


def test_the_sampling_temperature_is_chosen_by_the_reader_on_validation_images_ties_to_the_higher():
    images, labels = np.zeros((3, 4)), [0, 1, 0]
    generator = _PixelsByTemperature()
    best, accuracy = half_image.choose_temperature(generator, images, labels, _ReaderOf(0), samples=2,
                                                   temperatures=(0.5, 0.75, 1.0))
    assert best == 0.5 and accuracy == {0.5: 1.0, 0.75: 0.0, 1.0: 0.0}  # pixels 0, 3, 5
    assert [(s.temperature, s.n, s.seed) for s in generator.calls] == [(0.5, 2, 0), (0.75, 2, 0), (1.0, 2, 0)]
    best, accuracy = half_image.choose_temperature(_PixelsByTemperature(), images, labels, _ReaderOf(0, 5),
                                                   samples=2, temperatures=(0.5, 0.75, 1.0))
    assert best == 1.0 and accuracy[0.5] == accuracy[1.0] == 1.0  # a tie keeps the model's own distribution


def test_mean_pairwise_mse_is_the_spread_within_groups():
    same = np.array([[1, 1, 5, 5], [2, 2, 5, 5]])  # bottoms (half = 2) identical: no spread
    apart = np.array([[0, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 2]])  # per pair, mean squared differences 2, 2, 4
    assert half_image.mean_pairwise_mse([same], 2) == 0
    assert half_image.mean_pairwise_mse([apart], 2) == pytest.approx(8 / 3)
    assert half_image.mean_pairwise_mse([same, apart, apart[:1]], 2) == pytest.approx((0 + 8 / 3) / 2)  # a lone image has no pair


def test_the_completion_grid_draws_every_row_and_image_at_its_pixel_values():
    import matplotlib
    matplotlib.use("Agg")
    rng = np.random.default_rng(0)
    images = lambda: rng.integers(0, 10, (3, 16)).tolist()  # noqa: E731  3 images of 4x4 levels
    run = {"metrics": {"side": 4}, "labels": [7, 1, 2], "original": images(), "blank_bottom": images(),
           "lift": images(), "lift_samples": rng.integers(0, 10, (3, 2, 16)).tolist(), "class_mean": images(),
           "nearest_neighbour": images()}
    fig = half_image.completion_grid(run, "title", shown=10)
    axes = np.asarray(fig.axes).reshape(7, 3)  # original, top half, greedy, 2 samples, class mean, neighbour
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["original", "top half given", "LIFT greedy", "LIFT sample 1",
                                                      "LIFT sample 2", "class mean", "nearest neighbour"]
    assert [ax.get_title() for ax in axes[0]] == ["7", "1", "2"]
    drawn = axes[3, 1].get_images()[0].get_array()
    assert np.array_equal(drawn, np.asarray(run["lift_samples"])[1, 0].reshape(4, 4))


def test_icl_prompt_lists_the_examples_before_the_query(monkeypatch):
    from liftnb import datasets

    data = datasets.load("iris")
    template = datasets.template_for(data, style="no_names").bind(data.X, task="classification", classes=[0, 1, 2])
    prompts = icl_calibration.icl_prompts(template, data.X.head(2), [0, 0], data.X.iloc[[100]])
    lines = prompts[0].split("\n")
    assert len(lines) == 3 and lines[0].endswith("###0@@@") and lines[2].endswith("###")
    model, tokenizer = load_lm(TINY_RANDOM)
    calls, real_score_answers = [], icl_calibration.score_answers

    def score_answers_spy(model, tokenizer, prompts, answers, **options):
        scores = real_score_answers(model, tokenizer, prompts, answers, **options)
        calls.append((list(prompts), list(answers), scores))
        return scores

    monkeypatch.setattr(icl_calibration, "score_answers", score_answers_spy)
    context, labels, queries = data.X.head(2), [0, 1], data.X.iloc[[100, 101]]
    codes = icl_calibration.icl_predict(model, tokenizer, template, context, labels, queries)
    [(prompts, answers, scores)] = calls
    assert prompts == icl_calibration.icl_prompts(template, context, labels, queries)
    assert answers == template.class_answers()
    np.testing.assert_array_equal(codes, scores.argmax(1))


def test_calibration_measures():
    truth = np.array([0, 1, 1, 0])
    perfect = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    assert icl_calibration.expected_calibration_error(perfect, truth) == pytest.approx(0.0)
    overconfident = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # 3 of 4 right at confidence 1
    assert icl_calibration.expected_calibration_error(overconfident, truth) == pytest.approx(0.25)
    table = icl_calibration.reliability(overconfident, truth, bins=5)
    assert table["rows"].sum() == 4
    # scores that are 3x too sharp: the fitted temperature undoes it
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2000, 3))
    truth = np.array([rng.choice(3, p=np.exp(l) / np.exp(l).sum()) for l in logits])
    assert icl_calibration.fit_temperature(3 * logits, truth) == pytest.approx(3.0, rel=0.15)
    # every validation row right (notebook 02's full Moons run, 320 of 320): no temperature to fit, none applied
    assert icl_calibration.fit_temperature(3 * logits, logits.argmax(1)) == 1.0  # not the bound's 0.05


class WeightsAtTrainBegin(Callback):
    """Copies the model's parameters as training begins."""

    def on_train_begin(self, trainer):
        self.weights = {name: value.detach().float().clone() for name, value in trainer.model.named_parameters()}


def test_two_stage_data_and_model_export(tmp_path):
    target = two_stage.target_task(200, seed=0)
    slope = np.linalg.lstsq(target.X.to_numpy(), target.y.to_numpy(), rcond=None)[0]
    assert slope == pytest.approx([0.2, 0.4], abs=0.03)
    pretext = two_stage.pretext_tasks(n_tasks=3, rows_per_task=5)
    assert len(pretext.y) == 15 and list(pretext.X.columns) == ["x1", "x2"]
    from liftnb import LIFTRegressor

    first = LIFTRegressor(model=TINY_RANDOM, epochs=1, batch_size=16, precision="fp32", train_layers=1, verbose=0)
    first.fit(pretext.X, pretext.y)
    folder = first.export_model(tmp_path / "stage1")
    at_start = WeightsAtTrainBegin()
    second = LIFTRegressor(model=str(folder), epochs=1, batch_size=16, precision="fp32", train_layers=1, verbose=0,
                           callbacks=[at_start])
    second.fit(target.X.head(10), target.y.head(10))
    assert np.isfinite(second.predict(target.X.head(3))).all()
    # stage 2 really started from stage 1's weights, which stage 1 had moved away from the fresh model's
    trained = {name: value for name, value in first.model_.named_parameters() if value.requires_grad}
    fresh = dict(load_lm(TINY_RANDOM)[0].named_parameters())
    assert trained and set(trained) <= set(at_start.weights)
    for name, value in trained.items():
        np.testing.assert_array_equal(at_start.weights[name].numpy(), value.detach().float().numpy(), err_msg=name)
    assert any(not torch.equal(fresh[name], value.detach()) for name, value in trained.items())
    exported, _ = load_lm(str(folder))
    for name, value in exported.state_dict().items():
        assert pd.notna(value.float().sum().item()), name
    for name, value in exported.named_parameters():
        if name in trained:
            np.testing.assert_allclose(value.detach().numpy(), trained[name].detach().float().numpy(), rtol=1e-6)


def test_two_stage_classification_task_and_comparison(tmp_path, monkeypatch):
    target = two_stage.cluster_task(30, seed=0)
    assert target.task == "classification" and (target.y.value_counts().sort_index() == 10).all()
    np.testing.assert_allclose(target.X.groupby(target.y).mean().to_numpy(), two_stage.CLUSTER_CENTRES, atol=2.5)
    pretext = two_stage.pretext_clusters(n_tasks=3, rows_per_task=6)
    assert len(pretext.y) == 18 and pretext.task == "classification" and list(pretext.X.columns) == ["x1", "x2"]
    assert set(pretext.y[:6]) == {0, 1, 2}  # every pretext problem has all three clusters
    monkeypatch.setattr(two_stage, "cache_dir", lambda: tmp_path)
    settings = dict(epochs=1, batch_size=16, precision="fp32", train_layers=1)
    folder = two_stage.stage_one(pretext, **{**settings, "model": TINY_RANDOM})
    config = (tmp_path / folder).joinpath("config.json")
    written = config.stat().st_mtime_ns
    assert LIFTClassifier is two_stage.TASKS["classification"].estimator
    with monkeypatch.context() as patch:
        patch.setattr(LIFTClassifier, "fit", lambda *a, **k: pytest.fail("stage one was fitted again"))
        assert two_stage.stage_one(pretext, **{**settings, "model": TINY_RANDOM}) == folder  # cached, not refitted
        # another starting model or another stage_one is another folder, not this one reused
        estimator = LIFTClassifier(verbose=0, **{**settings, "model": TINY_RANDOM})
        assert two_stage.stage_one_folder(pretext, estimator) == tmp_path / folder
        identity = two_stage.model_identity
        patch.setattr(two_stage, "model_identity", lambda name=None: {**identity(name), "wheel": "another"})
        assert two_stage.stage_one_folder(pretext, estimator) != tmp_path / folder
        patch.undo()
        patch.setattr(two_stage, "code_fingerprint", lambda *modules: "another code")
        assert two_stage.stage_one_folder(pretext, estimator) != tmp_path / folder
    assert config.stat().st_mtime_ns == written
    out = two_stage.compare_stages(6, folder, two_stage.cluster_task(12, seed=5), **settings)
    assert out["n"] == 6 and {"accuracy_one_stage", "accuracy_two_stage"} <= set(out)
    assert "invalid_one_stage" not in out  # label scoring always answers a class
    with pytest.raises(ValueError, match="Unknown task 'ranking'"):
        two_stage.experiment("quick", task="ranking")


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_two_stage_fits_both_stages_with_the_profiles_learner(monkeypatch, profile):
    calls = []
    monkeypatch.setattr(two_stage, "stage_one", lambda pretext, **params: calls.append(("one", params)) or "folder")
    monkeypatch.setattr(two_stage, "compare_stages", lambda n, model, test, seed=0, **params:
                        calls.append(("two", params)) or {"n": n, "accuracy_one_stage": 0.5, "accuracy_two_stage": 0.5})
    monkeypatch.setattr(two_stage, "SIZES", {"quick": (10,), "full": (10,)})
    monkeypatch.setattr(two_stage, "SEEDS", {"quick": (0,), "full": (0,)})
    monkeypatch.setattr(two_stage, "cached_piece", lambda *args, **kwargs: args[4]())
    two_stage.experiment(profile, "classification")
    learner = runs.profile_learner(profile)
    assert calls == [("one", learner), ("two", learner)]
    assert (learner == runs.QUICK_LEARNER) == (profile == "quick")


def test_logistic_reference_reads_the_same_rows_and_the_oracle_is_near_perfect(monkeypatch):
    asked = []
    for name in ("training_rows", "held_out_rows"):
        real = getattr(two_stage, name)
        monkeypatch.setattr(two_stage, name, lambda *args, real=real, name=name: asked.append((name, *args))
                            or real(*args))
    reference = two_stage.logistic_reference("quick")
    # the rows compare_stages trains and tests LIFT on for each (n, seed) of the profile
    sizes, seeds = two_stage.SIZES["quick"], two_stage.SEEDS["quick"]
    assert asked == [("held_out_rows", "classification")] + [
        ("training_rows", "classification", n, seed) for n in sizes for seed in seeds]
    assert list(reference.index) == [*two_stage.SIZES["quick"], "oracle"]
    assert reference["oracle"] > 0.9 and (reference.drop("oracle") > 0.5).all()


def test_the_reader_learns_from_every_image_but_the_held_out_ones():
    task = half_image.HalfImage(side=8, max_value=16.0)
    everything, labels = half_image.whole_set({"name": "digits"})
    levels = task.quantise(everything)
    held = levels[:50]
    pool, pool_labels = half_image.reader_pool(levels, labels, held)
    held_rows = {row.tobytes() for row in held}
    assert not any(row.tobytes() in held_rows for row in pool)  # never a validation or test image
    assert len(pool) == sum(row.tobytes() not in held_rows for row in levels) > 1600  # every other image kept
    assert len(pool_labels) == len(pool)
    reader = half_image.fit_reader(pool, pool_labels)
    assert reader.score(held, labels[:50]) >= 0.9  # it reads real digits it never saw


def test_extra_training_images_are_stratified_and_never_a_copy_of_a_subsample_image():
    task = half_image.HalfImage(side=8, max_value=16.0)
    everything, labels = half_image.whole_set({"name": "digits"})
    levels = task.quantise(everything)
    subsample = levels[:400]
    extra = half_image.extra_training_images(levels, labels, subsample, 300)
    assert len(extra) == len(set(extra)) == 300 and extra.min() >= 0
    subsample_rows = {row.tobytes() for row in subsample}
    assert not any(levels[i].tobytes() in subsample_rows for i in extra)  # so never a validation or test image
    counts = np.bincount(labels[extra], minlength=10)
    assert counts.min() >= 25 and counts.max() <= 35  # stratified: about 30 of each digit
    assert np.array_equal(extra, half_image.extra_training_images(levels, labels, subsample, 300))  # seeded
    assert len(half_image.extra_training_images(levels, labels, subsample, 0)) == 0


def test_the_mnist_piece_keeps_its_validation_and_test_images_when_it_trains_on_more():
    mnist = half_image.image_sets("full")["mnist14"]
    assert mnist.extra_train > 0 and mnist.train_images == mnist.n_train + mnist.extra_train
    labels = np.repeat(np.arange(10), 170)
    train, val, test = half_image.split_images(labels, mnist)
    assert (len(train), len(val), len(test)) == (mnist.n_train, mnist.n_val, mnist.n_test)
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    # the subsample holds exactly the images split here, so the extra training images come from outside it
    assert mnist.n_train + mnist.n_val + mnist.n_test == mnist.options["n"]


@pytest.mark.parametrize("piece", list(half_image.image_sets("full")))
def test_a_committed_half_image_piece_holds_this_checkouts_test_images(piece):
    # notebook 08 reads the committed completions against these images (its old reader's scores): the same images
    from liftnb.paper import reproduce

    committed = reproduce.committed_piece("half_image", piece)
    if committed is None:
        pytest.skip(f"no committed figure data for {piece}")
    image_set = half_image.image_sets("full")[piece]
    images, labels, side, max_value = half_image._images(image_set.options)
    levels = half_image.HalfImage(side=side, max_value=max_value).quantise(images)
    _, _, test = half_image.split_images(labels, image_set)
    assert np.array_equal(np.asarray(committed["original"]), levels[test])


def test_an_icl_piece_is_keyed_by_its_data_not_its_name(monkeypatch):
    from dataclasses import replace

    from liftnb import datasets
    from liftnb.cache import fingerprint

    keys = []
    monkeypatch.setattr(icl_calibration, "cached_piece", lambda experiment, profile, piece, key, *a, **k:
                        keys.append(fingerprint(key)) or {"metrics": {}})
    monkeypatch.setattr(icl_calibration.classification, "plan", lambda profile: [])
    icl_calibration.icl_run("tae", 9, "quick")
    real = datasets.load

    def corrected(name, **options):  # the same name, one cell of its file corrected
        data = real(name, **options)
        X = data.X.copy()
        X.iloc[0, 0] = X.iloc[0, 0] + 1
        return replace(data, X=X)

    monkeypatch.setattr(icl_calibration.datasets, "load", corrected)
    icl_calibration.icl_run("tae", 9, "quick")
    assert len(keys) == 2 and keys[0] != keys[1]
