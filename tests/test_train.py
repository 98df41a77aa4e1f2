"""Training: a tiny model overfits two utterances; a killed run resumes exactly; DDP on gloo."""

import json
import os
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, make_prepared, run_process_group

from singalign.bundle import Bundle, init_bundle
from singalign.data.prepared import PreparedSet, collate, epoch_batches
from singalign.errors import SingalignError
from singalign.evaluate import evaluate_prepared
from singalign.models import preset
from singalign.train import TrainConfig, evaluate, fit, forward_batch, load_checkpoint
from singalign.transcribe import Transcriber

TWO = [
    {"id": "u1", "text": "hello world", "n_frames": 120},
    {"id": "u2", "text": "sing a song", "n_frames": 100},
]


def test_tiny_model_overfits_two_utterances(tmp_path):
    data = make_prepared(tmp_path / "data", TWO)
    cfg = TrainConfig(
        train=(str(data),),
        valid=(str(data),),
        out_dir=str(tmp_path / "run"),
        model=preset("tiny", "baseline", ly_rnn_hidden=96),
        epochs=400,
        batch_size=2,
        speech_per_batch=0,
        lr=3e-3,
        warmup_steps=10,
        patience=1000,
        seed=0,
    )
    # stop as soon as the validation CER reaches zero: check every 25 epochs
    result = None
    for stop in range(25, 401, 25):
        result = fit(replace(cfg, epochs=stop), progress=False)
        hist = [json.loads(x) for x in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
        if hist[-1]["valid_cer"] == 0.0:
            break
    assert hist[-1]["valid_cer"] == 0.0 and hist[-1]["valid_wer"] == 0.0, hist[-1]
    bundle = Bundle.load(tmp_path / "run" / "best")
    model = bundle.build_model()
    rates = evaluate(model, PreparedSet.load(str(data)), cfg, torch.device("cpu"))
    assert rates["cer"] == 0.0
    assert result.steps >= 50
    # the same known answer through evaluate_prepared (recipes/evaluate.py --prepared): every decoding
    # gives the references back, one hypothesis line per item
    summary = evaluate_prepared(bundle, [data], tmp_path / "eval", {"method": "greedy"},
                                {"beam": {"method": "beam"}}, progress=False)  # fmt: skip
    assert (summary["wer"], summary["cer"], summary["n_items"]) == (0.0, 0.0, 2)
    assert summary["decoders"]["beam"] == {"wer": 0.0, "cer": 0.0} and summary["decoding"] == "greedy"
    rows = [json.loads(x) for x in (tmp_path / "eval/hypotheses.jsonl").read_text().splitlines()]
    assert [(r["hypothesis"], r["hypothesis_beam"]) for r in rows] == [(t["text"], t["text"]) for t in TWO]
    # --limit: only the first item is scored, and its file says so
    first = evaluate_prepared(
        bundle, [data], tmp_path / "eval1", {"method": "greedy"}, progress=False, limit=1
    )
    assert (first["n_items"], first["n_ref_words"]) == (1, len(TWO[0]["text"].split()))
    rows = [json.loads(x) for x in (tmp_path / "eval1/hypotheses.jsonl").read_text().splitlines()]
    assert [r["hypothesis"] for r in rows] == [TWO[0]["text"]]
    with pytest.raises(SingalignError, match="limit must be at least 1"):
        evaluate_prepared(bundle, [data], tmp_path / "eval0", progress=False, limit=0)


def test_evaluate_prepared_scores_oracle_models_with_the_true_notes(tmp_path):
    items = [{"id": "a", "text": "la la", "n_frames": 60, "kind": "song", "notes": [(5, 30, 62)]},
             {"id": "b", "text": "oh", "n_frames": 50, "kind": "song", "notes": [(0, 20, 70)]},
             {"id": "c", "text": "", "n_frames": 40, "kind": "song", "notes": [(0, 10, 65)]}]  # fmt: skip
    data = make_prepared(tmp_path / "data", items)
    torch.manual_seed(0)
    oracle = Bundle.load(init_bundle(tmp_path / "oracle", "tiny", "oracle"))
    with pytest.raises(SingalignError, match="oracle-mode bundle needs ground-truth notes"):
        Transcriber(oracle)
    summary = evaluate_prepared(oracle, [data], tmp_path / "eval", {"method": "greedy"}, progress=False)
    assert summary["mode"] == "oracle" and summary["n_items"] == 2  # the item without text is skipped
    assert "pitch_frame_error" not in summary  # oracle models have no CRNN-1
    # the true notes reach the model: other notes change the oracle model's output
    model = oracle.build_model().eval()
    batch = collate([PreparedSet.load(str(data))[0]])
    out1 = forward_batch(model, batch, torch.device("cpu"))["char_logits"]
    batch["pitch"][0, 5:30] = 40
    out2 = forward_batch(model, batch, torch.device("cpu"))["char_logits"]
    assert not torch.allclose(out1, out2)
    multitask = Bundle.load(init_bundle(tmp_path / "mt", "tiny", "multitask"))
    summary = evaluate_prepared(multitask, [data], tmp_path / "eval_mt", {"method": "greedy"}, progress=False)
    assert 0.0 <= summary["pitch_frame_error"] <= 1.0


def test_withholding_notes_feeds_the_lyrics_crnn_zeros(tmp_path):
    """The ablation of recipes/evaluate.py --withhold-notes: the oracle model's hypotheses are then
    those of its zero pitch/onset input, whatever the true notes are."""
    from singalign.decode import DecodeOptions, decode_text

    items = [{"id": "a", "text": "la la", "n_frames": 60, "kind": "song", "notes": [(5, 30, 62)]},
             {"id": "b", "text": "oh", "n_frames": 50, "kind": "song", "notes": [(0, 20, 70)]}]  # fmt: skip
    data = make_prepared(tmp_path / "data", items)
    torch.manual_seed(1)
    oracle = Bundle.load(init_bundle(tmp_path / "oracle", "tiny", "oracle"))
    summary = evaluate_prepared(oracle, [data], tmp_path / "ev", {"method": "greedy"}, progress=False,
                                withhold_notes=True)  # fmt: skip
    assert summary["notes_input"] == "withheld (zeros)" and summary["n_items"] == 2
    rows = [json.loads(x) for x in (tmp_path / "ev/hypotheses.jsonl").read_text().splitlines()]
    model = oracle.build_model().eval()
    batch = collate([PreparedSet.load(str(data))[i] for i in range(2)])
    batch["pitch"][:] = 40  # other notes: irrelevant once withheld
    with torch.no_grad():
        out = forward_batch(model, {**batch, "has_notes": torch.zeros(2)}, torch.device("cpu"))
    logp = out["char_logits"].float().log_softmax(-1).numpy()
    expected = [" ".join(decode_text(logp[i, :n], DecodeOptions(method="greedy")).split())
                for i, n in enumerate(out["ctc_lengths"].tolist())]  # fmt: skip
    assert [r["hypothesis"] for r in rows] == expected
    with torch.no_grad():
        given = forward_batch(model, batch, torch.device("cpu"))["char_logits"]
    assert not torch.allclose(given, out["char_logits"])  # given notes do reach the model


def test_true_notes_feed_a_multitask_lyrics_crnn_what_oracle_mode_feeds(tmp_path):
    """The other ablation, --true-notes: a multitask model's lyrics CRNN gets the items' true notes
    (one-hot pitch and onsets) in place of CRNN-1's estimates; its hypotheses are then those of the
    same weights run as an oracle model. Other modes are refused."""
    from singalign.decode import DecodeOptions, decode_text

    items = [{"id": "a", "text": "la la", "n_frames": 60, "kind": "song", "notes": [(5, 30, 62)]},
             {"id": "b", "text": "oh", "n_frames": 50, "kind": "song", "notes": [(0, 20, 70)]}]  # fmt: skip
    data = make_prepared(tmp_path / "data", items)
    torch.manual_seed(2)
    mt = Bundle.load(init_bundle(tmp_path / "mt", "tiny", "multitask"))
    summary = evaluate_prepared(
        mt, [data], tmp_path / "ev", {"method": "greedy"}, progress=False, true_notes=True
    )
    assert summary["notes_input"] == "true notes" and 0.0 <= summary["pitch_frame_error"] <= 1.0
    rows = [json.loads(x) for x in (tmp_path / "ev/hypotheses.jsonl").read_text().splitlines()]
    model = mt.build_model().eval()
    model.cfg = replace(model.cfg, mode="oracle")
    batch = collate([PreparedSet.load(str(data))[i] for i in range(2)])
    with torch.no_grad():
        out = forward_batch(model, batch, torch.device("cpu"))
    logp = out["char_logits"].float().log_softmax(-1).numpy()
    expected = [" ".join(decode_text(logp[i, :n], DecodeOptions(method="greedy")).split())
                for i, n in enumerate(out["ctc_lengths"].tolist())]  # fmt: skip
    assert [r["hypothesis"] for r in rows] == expected
    with torch.no_grad():  # and that input differs from the estimates the model feeds itself
        own = forward_batch(mt.build_model().eval(), batch, torch.device("cpu"))["char_logits"]
    assert not torch.allclose(own, out["char_logits"])
    oracle = Bundle.load(init_bundle(tmp_path / "oracle", "tiny", "oracle"))
    with pytest.raises(SingalignError, match="this one is oracle"):
        evaluate_prepared(
            oracle, [data], tmp_path / "x", {"method": "greedy"}, progress=False, true_notes=True
        )
    with pytest.raises(SingalignError, match="not both"):
        evaluate_prepared(mt, [data], tmp_path / "x", progress=False, true_notes=True, withhold_notes=True)


def _resume_cfg(tmp_path, name):
    items = [{"id": f"s{i}", "text": t, "n_frames": 40 + 7 * i, "kind": "song" if i % 3 else "speech",
              "notes": [(3, 20, 60 + i)] if i % 3 else []}
             for i, t in enumerate(["la la", "oh my", "so do", "mi fa", "yes", "no no"])]  # fmt: skip
    data = make_prepared(tmp_path / "data", items)
    return TrainConfig(
        train=(str(data),),
        valid=(str(data),),
        out_dir=str(tmp_path / name),
        model=preset("tiny", "multitask", dropout=0.3, ly_rnn_layers=2),
        epochs=3,
        batch_size=3,
        speech_per_batch=1,
        warmup_steps=3,
        seed=7,
    )


def test_killed_and_resumed_run_ends_with_identical_weights(tmp_path):
    straight = _resume_cfg(tmp_path, "straight")
    fit(straight, progress=False)
    resumed = replace(straight, out_dir=str(tmp_path / "resumed"))
    fit(resumed, stop_after_steps=3, progress=False)  # "killed" in the middle of epoch 2
    assert load_checkpoint(Path(resumed.out_dir) / "checkpoint.pt")["step"] == 3
    fit(resumed, progress=False)
    a = load_checkpoint(Path(straight.out_dir) / "checkpoint.pt")
    b = load_checkpoint(Path(resumed.out_dir) / "checkpoint.pt")
    assert a["step"] == b["step"] == 6  # 4 songs, 2 per batch (+1 speech): 2 batches x 3 epochs
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    # every epoch's mean loss too, the one that was cut included (its sums were in the checkpoint)
    assert [h["train_loss"] for h in b["history"]] == pytest.approx(
        [h["train_loss"] for h in a["history"]], rel=1e-6
    )


def test_cosine_decay_known_factors_and_a_resumed_run_ends_at_the_final_rate(tmp_path):
    from singalign.train import warmup_schedule

    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=2.0)
    sched = warmup_schedule(opt, warmup_steps=2, total_steps=10, final=0.1)
    rates = []
    for _ in range(12):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # warm-up 1/2, the full rate at step 1, half-way down the cosine at step 5 (0.1 + 0.9 / 2), 0.1 from
    # step 9 (the run's last) on
    assert rates[:2] == pytest.approx([1.0, 2.0])
    assert rates[5] == pytest.approx(2.0 * 0.55) and rates[3] > rates[5] > rates[7]
    assert rates[9:] == pytest.approx([0.2, 0.2, 0.2])
    constant = warmup_schedule(torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=2.0), 2)
    assert [constant.lr_lambdas[0](s) for s in (0, 1, 50)] == [0.5, 1.0, 1.0]  # the default: no decay

    # through fit: 6 planned steps (3 epochs of 2); killed after 3 and resumed, the last step's rate is
    # lr x lr_final, the same as a straight run's, and the exported report names the schedule
    straight = replace(_resume_cfg(tmp_path, "straight"), lr_decay="cosine", lr_final=0.25, warmup_steps=1)
    fit(straight, progress=False)
    resumed = replace(straight, out_dir=str(tmp_path / "resumed"))
    fit(resumed, stop_after_steps=3, progress=False)
    fit(resumed, progress=False)
    for run in (straight, resumed):
        ck = load_checkpoint(Path(run.out_dir) / "checkpoint.pt")
        assert ck["step"] == 6
        assert ck["optimizer"]["param_groups"][0]["lr"] == pytest.approx(straight.lr * 0.25)
    a = load_checkpoint(Path(straight.out_dir) / "checkpoint.pt")["model"]
    b = load_checkpoint(Path(resumed.out_dir) / "checkpoint.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert Bundle.load(Path(straight.out_dir) / "best").config["training"]["config"]["lr_decay"] == "cosine"
    with pytest.raises(ValueError, match="lr_decay"):
        fit(replace(straight, out_dir=str(tmp_path / "bad"), lr_decay="linear"), progress=False)


def test_epoch_means_are_over_the_batches_run_across_a_kill_and_max_steps(tmp_path):
    """EpochLoop with a loss of 1, 2, 3, 4 for the four batches of an epoch: known means."""
    from types import SimpleNamespace

    from singalign.train import EpochLoop, _Dist, warmup_schedule

    def loop(out, **cfg):
        model = torch.nn.Linear(1, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        cfg = SimpleNamespace(**{"epochs": 2, "max_steps": None, "patience": 9, "grad_clip": None,
                                 "save_every_steps": 0, **cfg})  # fmt: skip
        return EpochLoop(tmp_path / out, model, opt, warmup_schedule(opt, 0), _Dist(), cfg, 0.0)

    def run(lp, **kw):
        (tmp_path / "x").mkdir(exist_ok=True)
        lp.out.mkdir(exist_ok=True)
        lp.resume()
        w = lp.model.weight
        return lp.run(lambda e: [[0], [1], [2], [3]], lambda e, b, items: {"loss": w.sum() * 0 + (b + 1.0)},
                      None, "loss", lambda rec, hist: None, progress=False, **kw)  # fmt: skip

    run(loop("straight"))
    straight = load_checkpoint(tmp_path / "straight/checkpoint.pt")["history"]
    assert [h["train_loss"] for h in straight] == [2.5, 2.5]
    run(loop("killed"), stop_after_steps=3)  # killed after three batches of epoch 1
    run(loop("killed"))
    assert [h["train_loss"] for h in load_checkpoint(tmp_path / "killed/checkpoint.pt")["history"]] == [
        2.5,
        2.5,
    ]
    run(loop("short", max_steps=6))  # epoch 2 ends after two batches: (1 + 2) / 2
    assert [h["train_loss"] for h in load_checkpoint(tmp_path / "short/checkpoint.pt")["history"]] == [
        2.5,
        1.5,
    ]


def test_records_clock_goes_on_across_a_kill_and_a_resume(tmp_path):
    """A fake clock advancing 1 s per batch: a run killed after 3 batches and resumed 100 s later
    (another process, its own start) records the same seconds as a run never stopped, 4 and 8."""
    from types import SimpleNamespace

    from singalign.train import EpochLoop, _Dist, warmup_schedule

    now = [0.0]

    def run(out, start, **kw):
        now[0] = start  # the process starts: its t0 is the clock now
        model = torch.nn.Linear(1, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        cfg = SimpleNamespace(epochs=2, max_steps=None, patience=9, grad_clip=None, save_every_steps=0)
        lp = EpochLoop(
            tmp_path / out, model, opt, warmup_schedule(opt, 0), _Dist(), cfg, now[0], clock=lambda: now[0]
        )
        lp.out.mkdir(exist_ok=True)
        lp.resume()

        def loss(e, b, items):
            now[0] += 1.0
            return {"loss": model.weight.sum() * 0 + 1.0}

        res = lp.run(
            lambda e: [[0], [1], [2], [3]], loss, None, "loss", lambda rec, hist: None, progress=False, **kw
        )
        return res, load_checkpoint(tmp_path / out / "checkpoint.pt")

    res, ck = run("straight", 0.0)
    assert [h["seconds"] for h in ck["history"]] == [4.0, 8.0] and res.seconds == 8.0
    _, ck = run("killed", 0.0, stop_after_steps=3)
    assert ck["seconds"] == 3.0 and ck["history"] == []
    res, ck = run("killed", 100.0)
    assert [h["seconds"] for h in ck["history"]] == [4.0, 8.0] and res.seconds == 8.0 and ck["seconds"] == 8.0


def test_batches_mix_songs_and_speech_and_are_a_function_of_the_epoch():
    entries = [{"kind": "song"}] * 24 + [{"kind": "speech"}] * 5
    b1 = epoch_batches(entries, 16, 4, seed=1, epoch=0)
    assert b1 == epoch_batches(entries, 16, 4, seed=1, epoch=0)
    assert b1 != epoch_batches(entries, 16, 4, seed=1, epoch=1)
    assert [len(b) for b in b1] == [16, 16]
    assert all(sum(entries[i]["kind"] == "speech" for i in b) == 4 for b in b1)


def test_two_process_gloo_ddp_step(tmp_path):
    cfg = replace(_resume_cfg(tmp_path, "ddp"), epochs=1, valid=())
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg.to_dict()))
    script = tmp_path / "ddp_fit.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, os, torch
            from singalign.train import TrainConfig, fit
            torch.set_num_threads(1)
            cfg = TrainConfig.from_dict(json.load(open({str(cfg_file)!r})))
            res = fit(cfg, progress=False)
            import torch.distributed as dist
            checksum = float(sum(p.detach().double().sum() for p in res.model.parameters()))
            # one file per rank: the ranks' prints share one pipe and can interleave on one line
            with open(os.path.join({str(tmp_path)!r}, f"rank{{dist.get_rank()}}.json"), "w") as f:
                json.dump({{"rank": dist.get_rank(), "world": dist.get_world_size(), "steps": res.steps,
                           "checksum": checksum}}, f)
            """
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = run_process_group(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517", str(script)],
        timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert sorted(x["rank"] for x in lines) == [0, 1] and all(x["world"] == 2 for x in lines)
    # 6 items in batches of 3 -> 2 batches per epoch, 1 per rank
    assert all(x["steps"] == 1 for x in lines)
    assert lines[0]["checksum"] == lines[1]["checksum"]  # gradients were averaged: replicas agree
    assert np.isfinite(load_checkpoint(Path(cfg.out_dir) / "checkpoint.pt")["history"][-1]["train_loss"])


def test_single_kind_batches_are_bucketed_by_length():
    rng = np.random.default_rng(0)
    entries = [{"kind": "speech", "n_frames": int(n)} for n in rng.integers(50, 800, 400)]
    batches = epoch_batches(entries, 16, 0, seed=3, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(400))  # every item once
    waste = sum(
        max(entries[i]["n_frames"] for i in b) * len(b) - sum(entries[i]["n_frames"] for i in b)
        for b in batches
    )
    assert waste / sum(e["n_frames"] for e in entries) < 0.1


def test_sigterm_ends_the_run_after_the_step_with_a_checkpoint(tmp_path):
    import signal
    from types import SimpleNamespace

    from singalign.train import EpochLoop, _Dist, warmup_schedule

    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    cfg = SimpleNamespace(epochs=5, max_steps=None, patience=10, grad_clip=None, save_every_steps=0)
    loop = EpochLoop(tmp_path, model, opt, warmup_schedule(opt, 1), _Dist(0, 1, 0), cfg, 0.0)
    x = torch.ones(4, 3)

    def loss(epoch, b_idx, items):
        if epoch == 1 and b_idx == 1:
            signal.raise_signal(signal.SIGTERM)  # as `kill PID` or a cluster's preemption would
        return {"loss": model(x).pow(2).mean()}

    before = signal.getsignal(signal.SIGTERM)
    res = loop.run(lambda e: [[0], [1], [2]], loss, None, "loss", lambda r, h: None, progress=False)
    assert res.steps == 5 and res.epochs == 1  # stopped after the 2nd step of epoch 2, not killed
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert (ck["step"], ck["epoch"], ck["batch_in_epoch"]) == (5, 1, 2)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is given back


def test_cpu_bf16_autocast_trains_float32_weights(tmp_path):
    cfg = replace(_resume_cfg(tmp_path, "bf16"), epochs=1, cpu_bf16=True, device="cpu")
    res = fit(cfg, progress=False)
    ck = load_checkpoint(Path(cfg.out_dir) / "checkpoint.pt")
    assert res.steps == 2 and np.isfinite(ck["history"][-1]["train_loss"])
    assert all(v.dtype == torch.float32 for v in ck["model"].values() if v.is_floating_point())
    # the same run without bf16 differs (autocast really ran) but not by much after 2 steps
    ref = fit(replace(cfg, cpu_bf16=False, out_dir=str(tmp_path / "fp32")), progress=False)
    diffs = [
        (a - b).abs().max().item()
        for a, b in zip(res.model.parameters(), ref.model.parameters(), strict=True)
    ]
    assert 0 < max(diffs) < 0.05


def test_export_checkpoint_gives_the_latest_weights_as_a_bundle(tmp_path):
    from singalign.train import export_checkpoint

    cfg = _resume_cfg(tmp_path, "run")
    fit(cfg, stop_after_steps=3, progress=False)  # stopped in the middle of epoch 2
    b = Bundle.load(export_checkpoint(cfg.out_dir, tmp_path / "exported"))
    ck = load_checkpoint(Path(cfg.out_dir) / "checkpoint.pt")
    t = b.config["training"]
    assert (t["step"], t["epoch"], t["batch_in_epoch"], t["from_checkpoint"]) == (3, 1, 1, True)
    state = b.state_dict()
    assert all(torch.equal(state[k], v) for k, v in ck["model"].items())


def test_compiled_cnns_give_the_eager_outputs_and_gradients_at_any_length():
    import copy

    from singalign.models import SingAlignModel, compile_cnns

    torch.manual_seed(0)
    eager = SingAlignModel(preset("tiny", "multitask"))
    comp = copy.deepcopy(eager)
    assert compile_cnns(comp) == 2  # CRNN-1's and CRNN-2's
    assert list(comp.state_dict()) == list(eager.state_dict())  # checkpoints stay interchangeable
    for t, lengths in [(40, [40, 31, 17]), (57, [57, 57, 9])]:  # a new length reuses the dynamic graph
        x = torch.randn(3, 2, 80, t)
        outs = []
        for model in (eager, comp):
            model.zero_grad(set_to_none=True)
            out = model(x, torch.tensor(lengths))
            (out["char_logits"].logsumexp(-1).sum() + out["pitch_logits"].square().mean()).backward()
            grads = torch.cat([p.grad.flatten() for p in model.parameters()])
            outs.append((out["char_logits"], out["pitch_logits"], grads))
        (ce, pe, ge), (cc, pc, gc) = outs
        assert torch.allclose(ce, cc, atol=1e-4) and torch.allclose(pe, pc, atol=1e-4)
        assert ((ge - gc).norm() / ge.norm()).item() < 1e-4


def test_fit_with_compile_trains_and_writes_eager_checkpoints(tmp_path):
    cfg = replace(_resume_cfg(tmp_path, "compiled"), epochs=1, compile=True, device="cpu")
    res = fit(cfg, progress=False)
    # nn.Module has _compiled_call_impl = None until .compile() sets it
    assert all(crnn.cnn._compiled_call_impl is not None for crnn in (res.model.pitch_onset, res.model.lyrics))
    ref = fit(replace(cfg, compile=False, out_dir=str(tmp_path / "eager")), progress=False)
    ck, ck_ref = (load_checkpoint(Path(d) / "checkpoint.pt") for d in (cfg.out_dir, ref.out_dir))
    assert list(ck["model"]) == list(ck_ref["model"])
    loss, loss_ref = ck["history"][-1]["train_loss"], ck_ref["history"][-1]["train_loss"]
    assert abs(loss - loss_ref) < 1e-3 * abs(loss_ref)
    Bundle.load(Path(cfg.out_dir) / "best")  # the exported bundle loads into an eager model


def test_a_medium_model_starts_from_a_small_bundle_copied_and_widened(tmp_path):
    """--init-from a `small` bundle into the `medium` preset: CRNN-1 and both CNNs are copied, both
    BiLSTM blocks and the output layer embedded in the wider ones. The first block's old units give
    the small model's values; the output layer ignores the new units."""
    from singalign.models import SingAlignModel
    from singalign.train import _load_init_weights

    small = Bundle.load(init_bundle(tmp_path / "small", "small", "multitask"))
    torch.manual_seed(1)
    medium = SingAlignModel(preset("medium", "multitask")).eval()
    # 94 tensors in `small`: all but block 0's 8 LSTM tensors, block 1's 8 and its layer norm's 2, and
    # fc.weight (more inputs now) have their shapes in `medium` (fc.bias among them); those 19 widen.
    assert _load_init_weights(medium, small.path) == (75, 19)
    old = small.build_model()
    fc, fc_old = medium.lyrics.fc.weight, old.lyrics.fc.weight
    assert torch.equal(fc[:, :192], fc_old[:, :192]) and torch.equal(fc[:, 384:576], fc_old[:, 192:])
    assert not fc[:, 192:384].any() and not fc[:, 576:].any()
    x, lengths = torch.randn(1, 2, 80, 60), torch.tensor([60])
    h = torch.randn(1, 30, old.lyrics.rnns[0].norm.normalized_shape[0])
    with torch.no_grad():
        assert torch.equal(old(x, lengths)["pitch_logits"], medium(x, lengths)["pitch_logits"])
        a, b = old.lyrics.rnns[0](h, lengths // 2), medium.lyrics.rnns[0](h, lengths // 2)
    assert torch.allclose(a[..., :192], b[..., :192], atol=1e-5)
    assert torch.allclose(a[..., 192:], b[..., 384:576], atol=1e-5)
