"""Training-loop plumbing on a tiny random model: answer-only loss, layer cache, LoRA, determinism."""
import math

import pytest
import torch

from liftnb.finetune import Callback, FitConfig, Trainer, collate, encode
from liftnb.finetune.config import AUTO_EPOCHS, AUTO_MIN_STEPS, AUTO_PATIENCE
from liftnb.finetune.surgery import answer_logits, decoder_of, layer_list

PROMPTS = ["When we have x1=1, What is this type?###", "When we have x1=22.5, x2=3, What is this type?###",
           "Given that a is 7, What is the category?###", "When we have x1=0, What is this type?###"]
ANSWERS = ["0@@@", "1@@@", "10@@@", "0@@@"]


def test_answer_only_loss_equals_hf_masked_loss(tiny):
    model, tokenizer = tiny
    examples = encode(tokenizer, PROMPTS, ANSWERS)
    batch = collate(examples, tokenizer.pad_token_id, "cpu")
    hidden = decoder_of(model)(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               position_ids=batch["position_ids"]).last_hidden_state
    ours = torch.nn.functional.cross_entropy(answer_logits(model, hidden, batch["predict_at"]), batch["targets"])
    labels = torch.full_like(batch["input_ids"], -100)
    for row, example in enumerate(examples):
        labels[row, example.n_prompt:len(example.input_ids)] = torch.tensor(example.input_ids[example.n_prompt:])
    reference = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    assert ours.item() == pytest.approx(reference.item(), rel=1e-4)
    assert len(batch["targets"]) == sum(len(e.input_ids) - e.n_prompt for e in examples)


def _fit(model, tokenizer, **config):
    trainer = Trainer(model, tokenizer, FitConfig(**{"epochs": 2, "batch_size": 2, "precision": "fp32", **config}))
    history = trainer.fit(encode(tokenizer, PROMPTS, ANSWERS))
    return trainer, history


def test_layer_cache_gives_the_same_training_as_full_forward(tiny):
    from liftnb.models import TINY_RANDOM, load_lm

    _, cached = _fit(*tiny, train_layers=1, cache_frozen=True, learning_rate=1e-3)
    _, uncached = _fit(*load_lm(TINY_RANDOM, device="cpu"), train_layers=1, cache_frozen=False, learning_rate=1e-3)
    assert cached.cached_layers == 1 and uncached.cached_layers == 0
    assert cached.step_loss == pytest.approx(uncached.step_loss, rel=1e-4)


@pytest.mark.parametrize("lora", [None, 4])
def test_long_prompts_train_the_same_with_the_kernel_chosen_by_length(lora):
    """Sequences past LONG_SEQUENCE_TOKENS run on SDPA (load_lm chose eager): same losses as eager throughout."""
    from liftnb.models import LONG_SEQUENCE_TOKENS, TINY_RANDOM, load_lm

    prompts = ["Given that " + ", ".join(f"p{i} is {(i * r) % 9}" for i in range(70)) + ", What is it?###"
               for r in range(1, 5)]
    losses = {}
    for kernel in (None, "eager"):
        model, tokenizer = load_lm(TINY_RANDOM, device="cpu", attn_implementation=kernel)
        assert len(tokenizer(prompts[0])["input_ids"]) > LONG_SEQUENCE_TOKENS
        switches, real_switch = [], model.set_attn_implementation
        model.set_attn_implementation = lambda name: (switches.append(name), real_switch(name))
        torch.manual_seed(1)
        trainer = Trainer(model, tokenizer, FitConfig(epochs=2, batch_size=2, precision="fp32", train_layers=1,
                                                      learning_rate=1e-2, lora=lora))
        losses[kernel] = trainer.fit(encode(tokenizer, prompts, ANSWERS)).step_loss
        assert trainer.model.config._attn_implementation == "eager"
        assert ("sdpa" in switches) == (kernel is None)  # every step of the load_lm-chosen model ran on SDPA
    assert losses[None] == pytest.approx(losses["eager"], rel=1e-4)


def _four_layer_tiny(tiny):
    from transformers import LlamaForCausalLM

    from liftnb.models import _tiny_config

    model, tokenizer = tiny
    config = _tiny_config(model.config)
    config.num_hidden_layers = 4
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval(), tokenizer


@pytest.mark.parametrize("lora", [None, 4])
def test_answer_only_last_layer_trains_exactly_like_the_full_top_stack(tiny, lora):
    """With 2 of 4 layers trained, the last layer runs at the answer positions only: same losses, same weights."""
    import copy

    model, tokenizer = _four_layer_tiny(tiny)
    twin = copy.deepcopy(model)
    torch.manual_seed(1)  # the same LoRA initialisation in both
    fast_trainer, fast = _fit(model, tokenizer, train_layers=2, cache_frozen=True, learning_rate=1e-2, lora=lora)
    torch.manual_seed(1)
    slow_trainer, slow = _fit(twin, tokenizer, train_layers=2, cache_frozen=False, learning_rate=1e-2, lora=lora)
    assert fast.answer_only_last_layer and fast.cached_layers == 2
    assert not slow.answer_only_last_layer and slow.cached_layers == 0
    assert fast.step_loss == pytest.approx(slow.step_loss, rel=1e-4)
    assert fast.step_loss[-1] < fast.step_loss[0]  # it trained
    trained = {k: v for k, v in fast_trainer.model.named_parameters() if v.requires_grad}
    for name, value in slow_trainer.model.named_parameters():
        if value.requires_grad:
            torch.testing.assert_close(trained[name], value, rtol=1e-3, atol=1e-5)


def test_top_layer_training_leaves_lower_layers_and_embeddings_untouched(tiny):
    model, tokenizer = tiny
    _, _, layers = layer_list(model)
    before_low = [p.detach().clone() for p in layers[0].parameters()]
    before_top = [p.detach().clone() for p in layers[1].parameters()]
    before_embed = model.get_input_embeddings().weight.detach().clone()
    _fit(model, tokenizer, train_layers=1, learning_rate=1e-3)
    assert all(torch.equal(a, b) for a, b in zip(before_low, layers[0].parameters()))
    assert torch.equal(before_embed, model.get_input_embeddings().weight)
    assert any(not torch.equal(a, b) for a, b in zip(before_top, layers[1].parameters()))


def test_lora_trains_only_adapters(tiny):
    model, tokenizer = tiny
    frozen = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer, history = _fit(model, tokenizer, lora=4, train_layers=None)
    names = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    # every linear layer of every transformer layer got an adapter (found generically, not hard-coded)
    adapted = {n.split(".lora_")[0] for n in names}
    assert len(adapted) == 2 * 7  # 2 layers x (q, k, v, o, gate, up, down)
    base = trainer.model.get_base_model()
    for name, value in frozen.items():
        current = dict(base.named_parameters()).get(name.replace(".weight", ".base_layer.weight"),
                                                    dict(base.named_parameters()).get(name))
        assert torch.equal(current, value), name
    assert len(history.step_loss) == 4


def test_full_finetuning_of_all_layers_trains_embeddings(tiny):
    model, tokenizer = tiny
    before = model.get_input_embeddings().weight.detach().clone()
    _, history = _fit(model, tokenizer, train_layers=None, learning_rate=1e-3)
    assert not torch.equal(before, model.get_input_embeddings().weight)
    assert history.cached_layers == 0


def test_same_seed_same_losses(tiny):
    from liftnb.models import TINY_RANDOM, load_lm

    _, first = _fit(*tiny, learning_rate=1e-3, train_layers=1)
    _, second = _fit(*load_lm(TINY_RANDOM, device="cpu"), learning_rate=1e-3, train_layers=1)
    assert first.step_loss == second.step_loss


def test_training_reduces_the_loss(tiny):
    _, history = _fit(*tiny, epochs=30, learning_rate=1e-2, train_layers=None)
    assert history.step_loss[-1] < 0.5 * history.step_loss[0]


def test_best_epoch_is_the_highest_validation_score_and_is_restored(tiny):
    assert _validated_fit(tiny, [0.2, 0.9, 0.4]).best_epoch == 2  # _validated_fit checks the weights are epoch 2's


def test_nan_loss_stops_training_with_a_clear_message(tiny):
    model, tokenizer = tiny

    class Poison(Callback):
        def on_step_end(self, trainer, loss):
            with torch.no_grad():
                for p in trainer.model.parameters():
                    if p.requires_grad:
                        p.fill_(math.nan)

    trainer = Trainer(model, tokenizer, FitConfig(epochs=2, batch_size=2, precision="fp32", train_layers=1),
                      callbacks=[Poison()])
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        trainer.fit(encode(tokenizer, PROMPTS, ANSWERS))


def test_bad_train_layers_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match="train_layers must be between 1 and 2 .*a fraction such as 0.4"):
        Trainer(*tiny, FitConfig(train_layers=5))
    with pytest.raises(ValueError, match="train_layers=1.5 is a float"):
        Trainer(*tiny, FitConfig(train_layers=1.5))
    with pytest.raises(ValueError, match="train_layers must be a number"):
        Trainer(*tiny, FitConfig(train_layers="top"))


@pytest.mark.parametrize("fraction, depth, trained", [(0.4, 30, 12), (0.4, 6, 2), (0.5, 2, 1), (0.01, 12, 1),
                                                      (1.0, 7, 7)])
def test_a_fractional_train_layers_follows_the_models_depth(fraction, depth, trained):
    assert FitConfig(train_layers=fraction).trained_layer_count(depth) == trained


def test_a_fraction_trains_the_top_layers_of_the_tiny_model(tiny):
    trainer = Trainer(*tiny, FitConfig(train_layers=0.5, precision="fp32"))
    _, _, layers = layer_list(trainer.model)
    assert [any(p.requires_grad for p in layer.parameters()) for layer in layers] == [False, True]


def _examples(tokenizer, n=8):
    return encode(tokenizer, PROMPTS * (n // len(PROMPTS)), ANSWERS * (n // len(ANSWERS)))


@pytest.mark.parametrize("settings, steps, epochs", [
    ({"epochs": 2}, 8, 2),  # 8 rows, batch 2: 4 steps an epoch
    ({"epochs": 2, "min_steps": 10}, 10, 3),  # raised to 10 steps: the third epoch stops after 2 of its 4 steps
    ({"epochs": 5, "max_steps": 6}, 6, 2),
    ({"epochs": 0, "min_steps": 3}, 3, 1),
    ({"epochs": 2, "min_steps": 10, "gradient_accumulation_steps": 2}, 10, 5),  # 2 steps an epoch
])
def test_training_length_in_steps(tiny, settings, steps, epochs):
    trainer = Trainer(*tiny, FitConfig(**{"batch_size": 2, "precision": "fp32", "train_layers": 1, **settings}))
    history = trainer.fit(_examples(trainer.tokenizer))
    assert (history.steps, len(history.epochs), trainer.total_steps) == (steps, epochs, steps)
    assert len(history.step_loss) == steps * settings.get("gradient_accumulation_steps", 1)


def test_auto_length_is_twelve_epochs_raised_to_the_minimum_steps_and_explicit_epochs_stay_exact():
    assert (AUTO_EPOCHS, AUTO_MIN_STEPS) == (12, 300)  # the defaults the sweep chose (liftnb.paper.sweep)
    assert (FitConfig().total_steps(4), FitConfig().epochs_for(4)) == (300, 75)  # a small set: 75 epochs
    assert FitConfig().total_steps(100) == 1200  # a large set: 12 epochs are already more than 300 steps
    assert FitConfig(epochs=2).total_steps(4) == 8  # explicit epochs train exactly that many, as before
    assert FitConfig(min_steps=0).total_steps(4) == 48
    assert FitConfig(epochs=2, min_steps=10).total_steps(4) == 10


@pytest.mark.parametrize("settings, message", [({"epochs": 0}, "Nothing to train"), ({"max_steps": 0}, "max_steps"),
                                               ({"patience": 0}, "patience"), ({"patience": "soon"}, "patience"),
                                               ({"min_steps": -1}, "min_steps"),
                                               ({"epochs": 2.5}, "epochs"), ({"epochs": "many"}, "epochs"),
                                               ({"epochs": True}, "epochs"), ({"min_steps": 1.5}, "min_steps")])
def test_bad_training_length_is_a_clear_error(tiny, settings, message):
    trainer = Trainer(*tiny, FitConfig(**{"precision": "fp32", "train_layers": 1, **settings}))
    with pytest.raises(ValueError, match=message):
        trainer.fit(_examples(trainer.tokenizer))


def _validated_fit(tiny, scores, tiebreaks=None, **settings):
    """Fit with a validate() that returns the given per-epoch scores; returns (history, snapshots per epoch)."""
    model, tokenizer = tiny
    snapshots = {}

    class Snapshot(Callback):
        def on_epoch_end(self, trainer, metrics):
            snapshots[trainer.epoch] = {k: v.detach().clone() for k, v in trainer.model.named_parameters()
                                        if v.requires_grad}

    values = iter(zip(scores, tiebreaks or [None] * len(scores)))

    def validate():
        score, tiebreak = next(values)
        return {"val_score": score} if tiebreak is None else {"val_score": score, "val_tiebreak": tiebreak}

    config = FitConfig(**{"epochs": len(scores), "batch_size": 2, "precision": "fp32", "learning_rate": 1e-3,
                          "train_layers": 1, **settings})
    trainer = Trainer(model, tokenizer, config, callbacks=[Snapshot()])
    history = trainer.fit(encode(tokenizer, PROMPTS, ANSWERS), validate=validate)
    for name, value in trainer.model.named_parameters():
        if value.requires_grad:
            assert torch.equal(value, snapshots[history.best_epoch][name])  # the kept epoch is what the model holds
    return history


def test_a_validation_tie_goes_to_the_higher_tiebreak_then_to_the_earlier_epoch(tiny):
    assert _validated_fit(tiny, [0.5, 0.5, 0.5], [-2.0, -1.0, -1.5]).best_epoch == 2
    assert _validated_fit(tiny, [0.5, 0.5, 0.5], [-1.0, -1.0, -1.0]).best_epoch == 1
    assert _validated_fit(tiny, [0.5, 0.7, 0.5], [-0.1, -3.0, -0.1]).best_epoch == 2  # accuracy comes first


def test_early_stopping_after_patience_epochs_without_a_better_one(tiny):
    history = _validated_fit(tiny, [0.2, 0.6, 0.5, 0.6, 0.9, 1.0], patience=2)
    assert history.stopped_early and history.best_epoch == 2 and len(history.epochs) == 4
    assert history.steps == 4 * 2  # 4 rows, batch 2
    history = _validated_fit(tiny, [0.2, 0.6, 0.5, 0.6, 0.9, 1.0], patience=3)
    assert not history.stopped_early and history.best_epoch == 6 and len(history.epochs) == 6


def test_auto_patience_waits_for_the_minimum_steps_and_leaves_explicit_epochs_alone(tiny):
    assert AUTO_PATIENCE == 3  # replayed on the committed validation curves (liftnb.paper.sweep.patience_choice)
    assert (FitConfig().resolved_patience(), FitConfig().patience_from_step()) == (3, AUTO_MIN_STEPS)
    assert FitConfig(epochs=5).resolved_patience() is None  # an explicit epochs=k trains exactly k epochs
    assert (FitConfig(patience=2).resolved_patience(), FitConfig(patience=2).patience_from_step()) == (2, 0)
    assert FitConfig(patience=None).resolved_patience() is None
    scores = [0.2, 0.6, 0.5, 0.5, 0.5, 0.5, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9]  # 12 epochs of 2 steps (4 rows, batch 2)
    history = _validated_fit(tiny, scores, epochs="auto", min_steps=8)
    assert history.stopped_early and history.best_epoch == 2 and len(history.epochs) == 5
    history = _validated_fit(tiny, scores, epochs="auto", min_steps=14)  # no stop before step 14 (epoch 7)
    assert history.stopped_early and history.best_epoch == 2 and len(history.epochs) == 7
    history = _validated_fit(tiny, scores, epochs="auto", min_steps=16)  # epoch 8 is reached, and is better
    assert history.stopped_early and history.best_epoch == 8 and len(history.epochs) == 11
    history = _validated_fit(tiny, scores, epochs="auto", min_steps=8, patience=None)
    assert not history.stopped_early and len(history.epochs) == 12


def test_bf16_keeps_trainable_weights_fp32_and_frozen_bf16(tiny):
    trainer = Trainer(*tiny, FitConfig(train_layers=1, precision="bf16"))
    pairs = {(p.requires_grad, p.dtype) for p in trainer.model.parameters()}
    assert pairs == {(True, torch.float32), (False, torch.bfloat16)}


def test_other_architecture_gpt2_trains_full_and_lora_and_refuses_an_unsafe_cache(tiny):
    """GPT-2 adds position embeddings inside its forward, so feeding cached hidden states as inputs_embeds
    would be wrong: the cache must be detected as unsafe and skipped; LoRA must find GPT-2's Conv1D layers."""
    from transformers import GPT2Config, GPT2LMHeadModel

    _, tokenizer = tiny
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=2, n_head=2)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    trainer, history = _fit(model, tokenizer, train_layers=1, learning_rate=1e-3)
    assert history.cached_layers == 0 and len(history.step_loss) == 4
    lora_trainer, lora_history = _fit(GPT2LMHeadModel(config), tokenizer, lora=2, train_layers=None)
    names = [n for n, p in lora_trainer.model.named_parameters() if p.requires_grad]
    assert any(".c_attn.lora_A" in n for n in names) and any(".mlp.c_fc.lora_A" in n for n in names)
    assert all(math.isfinite(loss) for loss in lora_history.step_loss)


def test_interrupt_keeps_last_epoch_and_resume_matches_an_uninterrupted_run(tmp_path):
    from liftnb.models import TINY_RANDOM, load_lm

    config = dict(epochs=3, batch_size=2, precision="fp32", train_layers=1, learning_rate=1e-3)
    examples = None

    def trained(trainer):
        return {k: v.detach().clone() for k, v in trainer.model.named_parameters() if v.requires_grad}

    model, tokenizer = load_lm(TINY_RANDOM, device="cpu")
    examples = encode(tokenizer, PROMPTS, ANSWERS)
    straight = Trainer(model, tokenizer, FitConfig(**config))
    straight_history = straight.fit(examples)

    epoch_states = {}

    class InterruptInEpochTwo(Callback):
        def on_epoch_end(self, trainer, metrics):
            epoch_states[trainer.epoch] = trained(trainer)

        def on_step_end(self, trainer, loss):
            if trainer.epoch == 2:
                raise KeyboardInterrupt

    checkpoints = str(tmp_path / "ckpt")
    first = Trainer(load_lm(TINY_RANDOM, device="cpu")[0], tokenizer,
                    FitConfig(**config, checkpoint_dir=checkpoints), callbacks=[InterruptInEpochTwo()])
    with pytest.raises(KeyboardInterrupt):
        first.fit(examples)
    assert first.history.interrupted and len(first.history.epochs) == 1
    for name, value in trained(first).items():  # the model holds epoch 1, not half of epoch 2
        assert torch.equal(value, epoch_states[1][name])
    resumed = Trainer(load_lm(TINY_RANDOM, device="cpu")[0], tokenizer, FitConfig(**config, checkpoint_dir=checkpoints))
    history = resumed.fit(examples, resume=True)
    assert not history.interrupted and [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert history.step_loss == pytest.approx(straight_history.step_loss, rel=1e-5)
    for name, value in trained(straight).items():
        torch.testing.assert_close(trained(resumed)[name], value, rtol=1e-5, atol=1e-6)


def test_resume_without_a_checkpoint_is_a_clear_error(tiny, tmp_path):
    trainer = Trainer(*tiny, FitConfig(epochs=1, train_layers=1, checkpoint_dir=str(tmp_path / "none")))
    with pytest.raises(FileNotFoundError, match="resume=True needs a checkpoint"):
        trainer.fit(encode(tiny[1], PROMPTS, ANSWERS), resume=True)
