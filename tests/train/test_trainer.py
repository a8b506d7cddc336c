import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from egmt.cli import main as cli_main
from egmt.text.annotations import write_annotations
from egmt.config import EGMTConfig
from egmt.errors import EGMTError
from egmt.train.checkpoint import latest_checkpoint, resolve_checkpoint
from egmt.train.trainer import train

REPO = Path(__file__).resolve().parents[2]


def _log(run: Path) -> dict[int, dict[str, str]]:
    with (run / "log.csv").open(newline="") as f:
        return {int(r["step"]): r for r in csv.DictReader(f)}


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(latest_checkpoint(run) / "model.safetensors"))


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_gives_the_uninterrupted_next_step(tiny_dataset, tiny_config, tmp_path, ema_decay):
    full = tmp_path / "full"
    train(tiny_config(tiny_dataset, max_steps=5, save_every=3, ema_decay=ema_decay), full)

    cut = tmp_path / "cut"
    train(tiny_config(tiny_dataset, max_steps=3, save_every=3, ema_decay=ema_decay), cut)
    cfg = EGMTConfig.load(cut / "config.json")
    cfg.train.max_steps = 5
    train(cfg, cut, resume=True)

    a, b = _log(full), _log(cut)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5]
    for step in (4, 5):  # the steps after the interruption, bit for bit
        assert a[step]["total"] == b[step]["total"]
        assert a[step]["cls"] == b[step]["cls"]
    wa, wb = _weights(full), _weights(cut)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_weight_averaging_validates_and_saves_the_average_of_the_trained_weights(tiny_dataset, tiny_config, tmp_path):
    from egmt.train.checkpoint import load_training_state
    from egmt.train.trainer import Trainer

    trainer = Trainer(tiny_config(tiny_dataset, max_steps=2, save_every=2, ema_decay=0.75, lr=1e-2), tmp_path / "run")
    seen = []
    for batch in trainer._loader():
        trainer.train_step(batch)
        seen.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        if len(seen) == 2:
            break
    trainer.step = 2
    folder = trainer.save()
    trainer.close()
    saved, state = load_file(str(folder / "model.safetensors")), load_training_state(folder)
    first, second = seen
    moved = [k for k in first if first[k].is_floating_point() and not torch.equal(first[k], second[k])]
    assert moved  # the two steps changed the weights, so the average differs from either
    d = min(0.75, 2 / 11)  # the decay's ramp at the second update: min(decay, (1 + n) / (10 + n)), n = 1
    for k in moved:  # the first update copies, the second blends
        torch.testing.assert_close(saved[k], d * first[k] + (1 - d) * second[k])
        assert torch.equal(state["train_weights"][k], second[k])  # training goes on from its own weights
    assert state["ema_updates"] == 2
    assert trainer.eval_model is trainer.ema.module and trainer.eval_model is not trainer.model


@pytest.mark.parametrize("source", ["run folder", "checkpoint folder"])
def test_init_from_starts_from_another_runs_weights_and_checks_the_model(tiny_dataset, tiny_config, tmp_path, source):
    from egmt.train.trainer import Trainer

    first = tmp_path / "first"
    train(tiny_config(tiny_dataset, max_steps=2, lr=1e-2), first)
    path = first if source == "run folder" else latest_checkpoint(first)
    cfg = tiny_config(tiny_dataset, max_steps=1, lr=1e-5, save_every=1, init_from=str(path))
    trainer = Trainer(cfg, tmp_path / "second")
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    loaded = _weights(first)
    assert all(torch.equal(start[k], loaded[k]) for k in loaded)
    trainer.fit()
    trainer.close()

    # Resuming the new run continues from its own checkpoint, not from init_from again.
    cfg.train.max_steps = 2
    resumed = Trainer(cfg, tmp_path / "second", resume=True)
    own = _weights(tmp_path / "second")
    assert all(torch.equal(resumed.model.state_dict()[k], own[k]) for k in own)
    assert any(not torch.equal(own[k], loaded[k]) for k in own)
    resumed.close()

    cfg.model.channels = 4
    with pytest.raises(EGMTError, match="another model config \\(channels differ\\)"):
        Trainer(cfg, tmp_path / "third")


def test_init_from_refuses_another_runs_classes(tiny_dataset, tiny_config, tmp_path):
    from egmt.text.labels import Vocabulary
    from egmt.train.trainer import Trainer

    first = tmp_path / "first"
    train(tiny_config(tiny_dataset, max_steps=1), first)
    folder = latest_checkpoint(first)
    vocabulary = Vocabulary.load(folder / "vocabulary.json")
    vocabulary.classes = list(reversed(vocabulary.classes))
    vocabulary.save(folder / "vocabulary.json")
    with pytest.raises(EGMTError, match="other classes"):
        Trainer(tiny_config(tiny_dataset, max_steps=1, init_from=str(folder)), tmp_path / "second")


@pytest.mark.parametrize("decay", [1.0, -0.1])
def test_an_ema_decay_outside_0_1_is_a_clear_error(tiny_dataset, tiny_config, tmp_path, decay):
    from egmt.train.trainer import Trainer

    with pytest.raises(EGMTError, match="train.ema_decay"):
        Trainer(tiny_config(tiny_dataset, max_steps=1, ema_decay=decay), tmp_path / "run")


def test_training_writes_config_log_and_atomic_checkpoints(tiny_dataset, tiny_config, tmp_path):
    run = tmp_path / "run"
    final = train(tiny_config(tiny_dataset, max_steps=4, save_every=2), run)
    assert final == latest_checkpoint(run) == resolve_checkpoint(run)
    assert {p.name for p in final.iterdir()} >= {
        "model.safetensors",
        "config.json",
        "vocabulary.json",
        "entity_bank.safetensors",
        "training_state.pt",
    }
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]  # no temp folder left
    saved = EGMTConfig.load(final / "config.json")
    assert saved.model.entity_dim == 12 and saved.model.num_classes == 3  # taken from bank and vocabulary
    log = _log(run)
    assert sorted(log) == [1, 2, 3, 4]
    assert all(float(r["total"]) > 0 for r in log.values())
    assert any((run / "tensorboard").iterdir())


def test_resume_without_checkpoint_is_a_clear_error(tiny_dataset, tiny_config, tmp_path):
    with pytest.raises(EGMTError, match="nothing to resume"):
        train(tiny_config(tiny_dataset, max_steps=1), tmp_path / "empty", resume=True)


def test_entities_are_required_unless_text_is_off(tiny_dataset, tiny_config, tmp_path):
    cfg = tiny_config(tiny_dataset, max_steps=1)
    cfg.data.annotations = None
    with pytest.raises(EGMTError, match="annotations"):
        train(cfg, tmp_path / "a")
    cfg.model.text_interaction = cfg.model.multi_task = False
    assert train(cfg, tmp_path / "b") is not None


def test_without_entities_the_network_reads_the_two_captions(tiny_dataset, tiny_config, tmp_path, monkeypatch):
    """model.text_tokens="captions" (Table VIII's w/o ENT): the pair's two captions are the text
    tokens, encoded with the bank's encoder (`egmt annotate` did not) and saved in the run's bank;
    the same caption twice is one token; multi-task must be off; `egmt fuse` with the checkpoint
    reads the captions from the annotation file, and a resolver from a caption file too."""
    import json
    import shutil

    import egmt.text.encoders
    from egmt.infer.entities import EntityResolver
    from egmt.text.annotations import read_annotations
    from egmt.text.bank import EntityBank
    from egmt.train.trainer import load_entity_features
    from tests.helpers import RandomEncoder

    ann = tmp_path / "annotations"
    shutil.copytree(tiny_dataset / "annotations", ann)
    captions = {
        "01": ("a man beside a house", "a house behind trees"),
        "02": ("a man in smoke", "A man in smoke."),
        "05": ("a field at night", "a grey field"),
    }
    tokens = {"01": ["man beside a house", "house behind tree"], "02": ["man in smoke"]}  # as the bank keys them
    lines = []
    for name, a in read_annotations(ann / "tiny.jsonl").items():
        a.ir_caption, a.vi_caption = captions[name]
        lines.append(a)
    write_annotations(ann / "tiny.jsonl", lines)
    monkeypatch.setattr(egmt.text.encoders, "load_encoder", lambda name, path=None, device="cpu": RandomEncoder())
    cfg = tiny_config(tiny_dataset, max_steps=2)
    cfg.data.annotations = str(ann / "tiny.jsonl")
    cfg.model.text_tokens = "captions"
    with pytest.raises(EGMTError, match="multi_task=false"):
        load_entity_features(cfg)
    cfg.model.multi_task = False
    entities, mask, _ = load_entity_features(cfg).batch(["01", "02"])
    assert mask.sum(dim=1).tolist() == [2, 1]
    assert torch.equal(entities[0], RandomEncoder().encode(tokens["01"]))
    final = train(cfg, tmp_path / "run")
    bank = EntityBank.load(final / "entity_bank.safetensors")
    assert all(c in bank for pair in captions.values() for c in pair)
    assert EGMTConfig.load(final / "config.json").model.text_tokens == "captions"
    out = tmp_path / "fused"
    args = ["fuse", "--ir", str(tiny_dataset / "ir"), "--vi", str(tiny_dataset / "vi"), "-o", str(out)]
    assert cli_main(args + ["--checkpoint", str(final), "--annotations", str(ann / "tiny.jsonl")]) == 0
    rows = {r["name"]: r for r in csv.DictReader((out / "entities.csv").open())}
    assert rows["01"]["entities"] == "; ".join(tokens["01"]) and rows["01"]["entity_source"] == "annotations"
    caption_file = tmp_path / "captions.jsonl"
    caption_file.write_text(json.dumps({"name": "02", "ir": captions["02"][0], "vi": captions["02"][1]}) + "\n")
    assert EntityResolver(captions=caption_file, tokens="captions")("02") == (tokens["02"], "captions")
    assert EntityResolver(annotations=ann / "tiny.jsonl")("01")[0] == ["person", "house", "tree"]


def test_cli_train_runs_and_resumes(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "cli"
    args = [
        "train",
        "--data",
        str(tiny_dataset),
        "--annotations",
        str(tiny_dataset / "annotations" / "tiny.jsonl"),
        "-o",
        str(run),
        "--crop-size",
        "32",
        "--crop-stride",
        "24",
        "--batch-size",
        "2",
        "--channels",
        "8",
        "--set",
        "model.window_size=8",
        "--set",
        "model.num_heads=2",
        "--max-steps",
        "2",
        "--log-every",
        "1",
        "--no-cgha",
    ]
    assert cli_main(args) == 0
    assert EGMTConfig.load(run / "config.json").model.cgha is False
    assert cli_main(["train", "-o", str(run), "--resume", "--max-steps", "3"]) == 0
    assert sorted(_log(run)) == [1, 2, 3]
    assert cli_main(["train", "-o", str(run), "--resume", "--channels", "4"]) == 2
    assert "cannot change when resuming" in capsys.readouterr().err
    assert cli_main(["train", "-o", str(run), "--resume", "--set", "loss.alpha_int=3"]) == 2  # never silently ignored
    assert "--set loss.alpha_int cannot change when resuming" in capsys.readouterr().err
    assert cli_main(["train", "-o", str(run), "--resume", "--set", "train.max_steps=4"]) == 0  # a longer budget
    assert sorted(_log(run)) == [1, 2, 3, 4] and EGMTConfig.load(run / "config.json").train.max_steps == 4


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_identical_weights(tiny_dataset, tiny_config, tmp_path):
    cfg = tiny_config(tiny_dataset, max_steps=3, save_every=100, device="cpu")
    cfg.save(tmp_path / "config.json")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(Path(__file__).with_name("ddp_worker.py")),
        str(tmp_path / "config.json"),
        str(tmp_path / "run"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    w0 = load_file(str(tmp_path / "run" / "rank0.safetensors"))
    w1 = load_file(str(tmp_path / "run" / "rank1.safetensors"))
    assert w0.keys() == w1.keys() and len(w0) > 0
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    init = load_file(str(tmp_path / "run" / "init.safetensors"))
    assert any(not torch.equal(init[k], w0[k]) for k in w0)  # training did move the weights
    assert sorted(_log(tmp_path / "run")) == [1, 2, 3]


def test_time_budget_stops_with_a_checkpoint_and_cosine_schedule(tiny_dataset, tiny_config, tmp_path):
    from egmt.train.trainer import Trainer

    cfg = tiny_config(tiny_dataset, max_steps=10, max_minutes=0.0, lr=1e-3)
    cfg.train.lr_schedule, cfg.train.warmup_steps = "cosine", 2
    trainer = Trainer(cfg, tmp_path / "run")
    assert [trainer.lr_at(s) for s in (0, 1)] == [5e-4, 1e-3]  # linear warm-up
    assert trainer.lr_at(2) == pytest.approx(1e-3) and trainer.lr_at(6) == pytest.approx(5e-4)
    assert trainer.lr_at(9) < 1e-4  # cosine towards 0 at the last step
    final = trainer.fit()  # zero minutes: stops after the first step, with a checkpoint
    trainer.close()
    assert final is not None and final.name == "step-0000001"
    assert sorted(_log(tmp_path / "run")) == [1]


def test_cpu_budget_stops_counts_only_training_and_survives_resume(tiny_dataset, tiny_config, tmp_path):
    from egmt.train.trainer import Trainer

    cfg = tiny_config(tiny_dataset, max_steps=6, save_every=2)
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.total_steps = 2
    trainer.fit()
    spent = trainer.cpu_seconds
    trainer.close()
    assert spent > 0
    resumed = Trainer(cfg, tmp_path / "run", resume=True)
    assert resumed.step == 2 and resumed.cpu_seconds == spent  # the CPU clock is part of the saved state
    resumed.config.train.max_cpu_minutes = spent / 60 + 1e-9  # any further step crosses the budget
    final = resumed.fit()
    resumed.close()
    assert final is not None and final.name == "step-0000003"
    with (tmp_path / "run" / "log.csv").open(newline="") as f:
        cpu = [float(r["cpu_seconds"]) for r in csv.DictReader(f)]
    assert len(cpu) == 3 and cpu == sorted(cpu)
    assert resumed.cpu_seconds >= 60 * resumed.config.train.max_cpu_minutes


def _spy_decodes(trainer) -> list:
    """Record the entities of every decode of the trainer's model."""
    model, seen = trainer.step_module.model, []
    decode = model.decode

    def spy(encoded, entities=None, mask=None, **kw):
        seen.append(entities)
        return decode(encoded, entities, mask, **kw)

    model.decode = spy
    return seen


def test_entity_negative_adds_the_shuffled_pass_to_the_total(tiny_dataset, tiny_config, tmp_path):
    """loss.entity_negative: the second pass gets the batch's entities rolled by one, the logged
    term is what it adds to the total, and it is zero (and the pass is not run) when off."""
    from egmt.train.trainer import Trainer

    off = tiny_config(tiny_dataset, max_steps=1)
    on = tiny_config(tiny_dataset, max_steps=1)
    on.loss.entity_negative, on.loss.entity_margin = 2.0, 10.0  # a margin no fusion loss gap reaches
    runs, decoded = {}, {}
    for name, cfg in (("off", off), ("on", on)):
        trainer = Trainer(cfg, tmp_path / name)
        decoded[name] = _spy_decodes(trainer)
        torch.manual_seed(0)
        batch = next(iter(trainer._loader()))
        batch_inputs = trainer._batch(batch)
        batch_inputs["entity_mask"] = torch.ones_like(batch_inputs["entity_mask"])  # no dropout here
        torch.manual_seed(1)
        runs[name] = trainer.step_module(**batch_inputs)
    assert runs["off"]["entity_neg"].item() == runs["off"]["entity_con"].item() == 0.0
    assert len(decoded["off"]) == 1 and len(decoded["on"]) == 2
    own, shuffled = decoded["on"]
    assert torch.equal(shuffled, torch.roll(own, 1, dims=0)) and not torch.equal(shuffled, own)
    neg = runs["on"]["entity_neg"].item()
    assert neg > 9.0  # relu(own - shuffled + 10): the two passes differ by far less than the margin
    without = runs["on"]["total"].item() - 2.0 * neg
    parts = runs["on"]["lambda_fus"] * runs["on"]["fusion"] + runs["on"]["lambda_cls"] * runs["on"]["cls"]
    assert without == pytest.approx(parts.item(), rel=1e-5)


def test_entity_contrast_reads_cgha_logits_and_leaves_the_modules_clean(tiny_dataset, tiny_config, tmp_path):
    """loss.entity_contrast: a term with a gradient into CGHA's query/key layers, and no logits
    kept on the modules after the step (inference and heat maps see nothing of it)."""
    from egmt.train.trainer import Trainer

    cfg = tiny_config(tiny_dataset, max_steps=1)
    cfg.loss.entity_contrast, cfg.loss.entity_contrast_margin = 1.0, 100.0  # every pair inside the margin
    trainer = Trainer(cfg, tmp_path / "run")
    decoded = _spy_decodes(trainer)
    inputs = trainer._batch(next(iter(trainer._loader())))
    inputs["entity_mask"] = torch.ones_like(inputs["entity_mask"])
    terms = trainer.step_module(**inputs)
    assert len(decoded) == 2 and torch.equal(decoded[1], torch.roll(decoded[0], 1, dims=0))
    assert terms["entity_con"].item() > 90.0
    cgha = trainer.step_module.cgha
    assert cgha and all(m.logits is None and not m.keep_logits for m in cgha)
    terms["entity_con"].backward()
    assert all(m.q_tokens.weight.grad is not None and m.q_tokens.weight.grad.abs().sum() > 0 for m in cgha)


def test_an_export_folder_given_as_a_checkpoint_is_named(tmp_path):
    """An `egmt export` folder where a checkpoint is expected: the error says to read it with
    --backend onnxruntime; any other folder is simply not a checkpoint."""
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "fusion.onnx").write_bytes(b"")
    with pytest.raises(EGMTError, match="an `egmt export` folder .*--backend onnxruntime"):
        resolve_checkpoint(tmp_path / "exported")
    with pytest.raises(EGMTError, match="not an egmt checkpoint"):
        resolve_checkpoint(tmp_path)
