"""The study protocol: lr edge extension, config-hash run folders, explicit base checkpoints,
numbers recomputed from saved predictions, dev-only ranking, the numbers of README and docs/
from results.csv."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from seisbert.analysis.gapfill_commands import evaluate_checkpoint
from seisbert.analysis.sweeps import summarize_sweep
from seisbert.metrics import PREDICTIONS_FILE, classification_metrics, load_predictions
from seisbert.study.input_target import input_target_table
from seisbert.study.protocol import (
    compose_run,
    load_study,
    place,
    protocol_overrides,
    run_once,
    tune,
    tune_many,
)
from seisbert.study.report import (
    FRONT_ROWS,
    block_home,
    front_block,
    front_marker,
    markers,
    read_cells,
    relative,
    write_blocks,
)
from seisbert.study.reproduce import reproduce

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def hlist(*items) -> str:
    """A Hydra override list of override strings (each quoted)."""
    return "[" + ",".join(f"'{i}'" for i in items) + "]"


TINY = [
    "data.n_events=80",
    "tokenizer.vocab_size=16",
    "model=tiny",
    "logger=none",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
]
TINY_STUDY = [
    "seeds=[0,1]",
    "pretrain_seeds=[0]",
    "umap=false",
    "attention=false",
    # the token arms only: the continuous-input and pool arms are quick.yaml's, tested below
    "~pretrain.mlm_psd",
    "~pretrain.mlm_psd_pool5k",
    "~pretrain.mlm_psd_pool20k",
    "~pretrain.mlm_psd_pool50k",
    "~finetune.arms.psd",
    "~finetune.arms.psd_pool5k",
    "~finetune.arms.psd_pool20k",
    "~finetune.arms.psd_pool50k",
    "~finetune.arms.scratch_psd",
    "pool_curve=[]",
    "finetune.max_extensions=0",
    "label_sizes=[null]",
    "finetune.arms.mlm.labels=null",
    "finetune.arms.scratch.labels=null",
    "pretrain_overrides=" + hlist("trainer.max_epochs=1", "task.monitor=val/mlm_acc_all_masked"),
    "gapfill.bases=[mlm]",
    "gapfill.lengths=[1,3]",
    "gapfill.max_records=20",
    "budget.epochs=1",
    "budget.min_steps=4",
    "budget.validations=2",
    "budget.patience=1",
    "bootstrap.n_boot=200",
    "baselines.rf="
    + hlist(
        "experiment=baseline_rf", "baseline.n_estimators=10", "baseline.max_depth_grid=[2,4,6,8]"
    ),
    "baselines.rf_hist="
    + hlist(
        "experiment=baseline_rf",
        "baseline.features=histogram",
        "baseline.n_estimators=10",
        "baseline.max_depth_grid=[2,4,6,8]",
    ),
    "baselines.hgb="
    + hlist(
        "experiment=baseline_hgb",
        "baseline.max_iter=5",
        "baseline.learning_rate_grid=[0.05,0.1,0.2,0.4]",
        "baseline.max_leaf_nodes_grid=[7]",
    ),
    "baselines.cnn=" + hlist("experiment=baseline_cnn", "baseline.lr_grid=[1e-4,1e-3,1e-2,1e-1]"),
]


# ------------------------------------------------------------------ the grid
def peak_at(x0: float):
    return lambda lr: -abs(np.log10(lr) - np.log10(x0))


def test_lr_grid_extends_while_the_choice_sits_on_an_edge():
    grid = [1e-4, 3e-4, 9e-4, 2.7e-3]
    best, tried = tune(grid, 3.0, 2, peak_at(2e-2))  # far above the top: two steps up, then stop
    assert sorted(tried) == [1e-4, 3e-4, 9e-4, 2.7e-3, 8.1e-3, 2.43e-2] and best == 2.43e-2
    best, tried = tune(
        grid, 3.0, 2, peak_at(4e-5)
    )  # below the bottom: down until the best is inside
    assert sorted(tried) == [1.11e-5, 3.33e-5, 1e-4, 3e-4, 9e-4, 2.7e-3] and best == 3.33e-5
    best, tried = tune(
        grid, 3.0, 2, peak_at(1.5e-4)
    )  # the bottom edge's neighbour wins: one step is enough
    assert sorted(tried) == [3.33e-5, 1e-4, 3e-4, 9e-4, 2.7e-3] and best == 1e-4
    best, tried = tune(grid, 3.0, 2, peak_at(3e-4))  # inside: nothing added
    assert sorted(tried) == grid and best == 3e-4
    best, tried = tune(grid, 3.0, 0, peak_at(1.0))  # extensions switched off
    assert sorted(tried) == grid and best == 2.7e-3


def test_cells_tuned_together_extend_independently_one_round_at_a_time():
    grid, rounds = [1e-4, 3e-4, 9e-4, 2.7e-3], []
    peaks = {"high": peak_at(2e-2), "inside": peak_at(3e-4), "low": peak_at(4e-5)}

    def score_many(todo):  # the study runs each round's runs together (in parallel)
        rounds.append(sorted(todo))
        return [peaks[c](v) for c, v in todo]

    got = tune_many(list(peaks), grid, 3.0, 2, score_many)
    assert [len(r) for r in rounds] == [12, 2, 2]  # the grids, then both edge cells twice, together
    assert got["inside"] == tune(grid, 3.0, 2, peaks["inside"]) and got["inside"][0] == 3e-4
    assert got["high"][0] == 2.43e-2 and got["low"][0] == 3.33e-5


@pytest.mark.parametrize(
    "override, match",
    [
        ("finetune.lr_grid=[1e-4,3e-4,1e-3]", "has 3 values; the protocol needs at least 4"),
        ("finetune.lr_grid=[1e-4,3e-4,1e-3,3e-3]", "is not log-spaced"),
        ("finetune.arms.mlm.base=nope", r"arms.mlm.base='nope' is not a pretraining arm"),
        ("finetune.tune_seed=9", "tune_seed=9 is not one of study.seeds"),
        ("budget.patience=0", r"study.budget.patience=0 is out of range"),
        ("+finetune.arms.mlm.lr=1", r"study.finetune.arms.mlm.lr is not a known key"),
        (
            "gapfill.bases=[nope]",
            r"study.gapfill.bases names 'nope', which is not a pretraining arm",
        ),
        (
            "+pretrain_seeds_of.nope=[0]",
            r"study.pretrain_seeds_of names 'nope', which is not a pretraining arm",
        ),
        (
            "+pretrain_seeds_of.mlm=[1,1]",
            r"study.pretrain_seeds_of.mlm=\[1, 1\] must be a non-empty list",
        ),
    ],
)
def test_the_paper_schema_refuses_bad_protocols(override, match):
    with pytest.raises(ValueError, match=match):
        load_study("quick", [override])


def test_every_preset_follows_the_protocol():
    quick, full, continuous = load_study("quick"), load_study("full"), load_study("continuous")
    # the headline (full) runs make paper's seeds and more label counts (the 50-label cell)
    assert set(full.seeds) >= set(quick.seeds) and set(full.pretrain_seeds) >= set(
        quick.pretrain_seeds
    )
    assert set(map(str, full.label_sizes)) > set(map(str, quick.label_sizes))
    assert 50 in full.label_sizes and None in full.label_sizes
    for study in (quick, full, continuous):
        assert len(study.finetune.lr_grid) >= 4
        assert {a.base for a in study.finetune.arms.values()} >= set(study.pretrain)


def test_fine_tuning_seeds_cycle_over_their_own_base_models_seeds():
    study = load_study("full", ["+pretrain_seeds_of.mlm_psd_rp_pool50k_3k=[0]"])
    assert [study.pretrain_seed(s, "mlm_nsp") for s in study.seeds] == [0, 1, 2, 0, 1]
    # an ablation with one base model: every fine-tuning seed starts from it
    assert [study.pretrain_seed(s, "mlm_psd_rp_pool50k_3k") for s in study.seeds] == [0] * 5
    assert study.base_seeds("mlm_psd_rp_pool50k") == [0, 1, 2]
    # full.yaml gives every base model the study's seeds
    assert load_study("full", []).base_seeds("mlm_psd_rp_pool50k_3k") == [0, 1, 2]


# The protocol's full size on a GPU, as configs/study/full.yaml's header gives it.
GPU_FULL_SIZE = [
    "jobs=1",
    "base_overrides=['model=small','trainer=gpu','logger=csv',"
    "'~callbacks.progress_bar','trainer.enable_progress_bar=false']",
]


def test_the_gpu_command_composes_the_full_size_on_a_gpu():
    """The default data (not quick's cut), a GPU trainer, every base model at the study's
    pretraining seeds."""
    study = load_study("full", GPU_FULL_SIZE)
    cfg = compose_run(study, ["task=prepare"])
    default = compose_run(load_study("full", ["base_overrides=[]"]), ["task=prepare"])
    quick = compose_run(load_study("full", []), ["task=prepare"])
    assert cfg.trainer.accelerator == "gpu" and study.jobs == 1
    assert cfg.data.n_events == default.data.n_events > quick.data.n_events
    assert all(study.base_seeds(name) == list(study.pretrain_seeds) for name in study.pretrain)


# ---------------------------------------------------------- run folders by hash
def test_a_run_folder_is_named_by_its_config_and_a_stale_one_is_not_reused(tmp_path, shared_cache):
    def folder(*study_overrides):
        study = load_study(
            "quick", [f"run_dir={tmp_path}", "base_overrides=" + hlist(*TINY), *study_overrides]
        )
        arm = study.finetune.arms["scratch"]
        cfg = compose_run(
            study, protocol_overrides(study, arm, study.budget.plan(50), 50, 0, 3e-4, None)
        )
        return place(cfg, study, "finetune", "scratch", "n50", "seed0", "lr3e-4")

    first, same, longer = folder(), folder(), folder("budget.epochs=400")
    assert (
        folder("budget.patience=9").paths.output_dir != first.paths.output_dir
    )  # early stopping is budget too
    assert first.paths.output_dir == same.paths.output_dir
    assert longer.paths.output_dir != first.paths.output_dir
    assert longer.trainer.max_epochs != first.trainer.max_epochs
    stale = Path(first.paths.output_dir)
    stale.mkdir(parents=True)
    (stale / "metrics.json").write_text(json.dumps({"test/balanced_accuracy": 0.123}))
    assert run_once(first)["test/balanced_accuracy"] == 0.123  # identical config: reused
    assert not (
        Path(longer.paths.output_dir) / "metrics.json"
    ).exists()  # the changed budget runs afresh


def test_the_protocol_sets_budget_early_stopping_and_the_base_checkpoint(tmp_path):
    study = load_study("quick", [f"run_dir={tmp_path}", "base_overrides=" + hlist(*TINY)])
    plan = study.budget.plan(50)
    cfg = compose_run(
        study,
        protocol_overrides(study, study.finetune.arms["mlm"], plan, 50, 1, 1e-3, "/x/best.ckpt"),
    )
    assert cfg.task.params.checkpoint == "/x/best.ckpt" and cfg.task.params.lr == 1e-3
    assert (
        cfg.trainer.max_epochs == plan["epochs"] > study.budget.epochs
        and cfg.trainer.max_steps == -1
    )
    assert (
        plan["steps"] >= study.budget.min_steps
    )  # a 50-label subset gets more epochs, not fewer steps
    stop = cfg.callbacks.early_stopping
    assert (stop._target_, stop.monitor, stop.mode, stop.patience) == (
        "lightning.pytorch.callbacks.EarlyStopping",
        "val/balanced_accuracy",
        "max",
        study.budget.patience,
    )
    assert (
        cfg.callbacks.model_checkpoint.monitor == "val/balanced_accuracy"
    )  # the best dev checkpoint is restored
    assert cfg.task.params.masked_eval is False  # masked inputs: the all-label classifier only


# ---------------------------------------------------------------- sweep ranking
def test_sweep_summary_ranks_by_dev_never_test(tmp_path):
    for job, (dev, test) in enumerate([(0.6, 0.9), (0.8, 0.5), (0.7, 0.7)]):
        (tmp_path / str(job)).mkdir()
        cfg = {"task": {"monitor": "val/acc", "monitor_mode": "max"}, "model": {"layers": job + 1}}
        (tmp_path / str(job) / "config.yaml").write_text(yaml.safe_dump(cfg))
        (tmp_path / str(job) / "metrics.json").write_text(
            json.dumps({"val/acc": dev, "test/acc": test})
        )
    table = summarize_sweep(tmp_path)
    assert table.job.tolist() == ["1", "2", "0"]  # by dev; by test it would be 0, 2, 1
    with pytest.raises(ValueError, match="test/acc is a test metric; jobs are ranked on dev only"):
        summarize_sweep(tmp_path, metric="test/acc")


# ------------------------------------------------------------ README vs results
def numbers_outside_headers(block: str) -> list[float]:
    """Every number of a results block except table headers and link targets/code spans."""
    lines = block.splitlines()
    keep = [
        ln
        for i, ln in enumerate(lines)
        if not (i + 1 < len(lines) and lines[i + 1].startswith("|---"))
    ]
    text = re.sub(r"`[^`]*`|\]\([^)]*\)", " ", "\n".join(keep))
    return [float(x) for x in NUMBER.findall(text)]


def check_block_against_results(readme_text: str, base: Path, marker: str = "results") -> int:
    block = readme_text[
        readme_text.index(f"<!-- {marker}:start -->") : readme_text.index(f"<!-- {marker}:end -->")
    ]
    cited = re.search(r"\[[^\]]*\.csv\]\(([^)]+)\)", block).group(1)
    cells = pd.read_csv(base / cited)
    known = {
        round(abs(float(v)), 1)
        for c in ("value", "lo", "hi", "n_seeds", "n_events")
        for v in cells[c].dropna()
    }
    known |= {float(v) for v in cells["labels"].dropna() if str(v).isdigit()}
    numbers = numbers_outside_headers(block)
    missing = [n for n in numbers if round(n, 1) not in known]
    assert not missing, f"numbers in the README results block that {cited} does not hold: {missing}"
    return len(numbers)


def block_page(marker: str) -> Path:
    """The page of the documentation that holds ``marker``'s block (README.md or a page it
    links to): where the study writes it, so where the check reads it."""
    return block_home(ROOT / "README.md", marker)


def test_readme_results_block_numbers_are_in_its_results_csv():
    page = block_page("results")
    text = page.read_text()
    if "<!-- results:start -->" not in text:
        pytest.skip("no generated results block yet (make paper writes it)")
    assert check_block_against_results(text, page.parent) > 20


def test_readme_headline_block_numbers_are_in_its_results_csv():
    if not (ROOT / "reports" / "paper_full" / "results.csv").is_file():
        pytest.skip("no headline run yet (scripts/reproduce_paper.py scale=full writes it)")
    page = block_page("headline")
    assert check_block_against_results(page.read_text(), page.parent, "headline") > 20


def test_readme_input_target_block_numbers_are_in_its_csv():
    if not (ROOT / "reports" / "continuous_study" / "input_target.csv").is_file():
        pytest.skip("no input x target table yet (scripts/input_target_table.py writes it)")
    page = block_page("input-target")
    assert check_block_against_results(page.read_text(), page.parent, "input-target") > 20


def test_readme_front_table_is_the_one_its_results_csv_gives():
    results = ROOT / "reports" / "paper_full" / "results.csv"
    if not results.is_file():
        pytest.skip("no headline run yet (scripts/reproduce_paper.py scale=full writes it)")
    text = (ROOT / "README.md").read_text()
    marker = front_marker("headline")
    start, end = markers(marker)
    block = text[text.index(start) : text.index(end) + len(end)]
    assert check_block_against_results(text, ROOT, marker) > 20
    rows = [ln for ln in block.splitlines() if ln.startswith("| ") and not ln.startswith("| model")]
    assert 0 < len(rows) <= FRONT_ROWS
    # regenerated from the committed results alone, the block comes out the same: nothing in it
    # was typed by hand (python scripts/reproduce_paper.py scale=full --blocks rewrites it)
    again = front_block(
        read_cells(results),
        "reports/paper_full/results.csv",
        relative(block_page("headline"), ROOT),
        marker,
    )
    assert block == again


# ---------------------------------------------------------------- end to end
def plant_decoy_base_model(study, cache: Path) -> Path:
    """A newer cached 'mlm' model on the study's tokens whose checkpoint is not loadable: a
    study that fell back to "the newest cached base model" would crash on it."""
    from seisbert.pipeline import prepare

    digest = Path(
        prepare(place(compose_run(study, ["task=prepare"]), study, "prepare"))["tokens"]
    ).name
    decoy = cache / "mlm" / "decoy"
    decoy.mkdir(parents=True)
    (decoy / "model.ckpt").write_bytes(b"not a checkpoint")
    (decoy / "model.json").write_text(json.dumps({"tokens": digest, "task": "mlm"}))
    future = 4_000_000_000  # 2096: newer than anything the study writes
    os.utime(decoy / "model.json", (future, future))
    return decoy


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    cache = tmp / "cache"
    readme = tmp / "README.md"
    readme.write_text("# x\n\n## Results\n\nold words 12.3\n\n### Benchmarks\n\nkept 7\n")
    argv = [
        # one torch thread per run: two threads per tiny run on 2 shared cores spin 20-40x slower
        "base_overrides=" + hlist(*TINY, "torch_threads=1", f"paths.cache_dir={cache}"),
        *TINY_STUDY,
        f"out_dir={tmp}/report",
        f"run_dir={tmp}/runs",
        f"readme={readme}",
        "jobs=1",  # worker processes cost ~7 s of start-up each; one test below uses them
    ]
    plant_decoy_base_model(load_study("quick", argv), cache)
    report = reproduce(argv)
    return tmp, report, argv, reproduce


def test_tiny_study_reports_every_row_from_saved_predictions(tiny_study):
    tmp, report, _, _ = tiny_study
    runs = pd.read_csv(tmp / "report" / "runs.csv")
    cells = pd.read_csv(tmp / "report" / "results.csv")
    assert set(runs.arm) == {"mlm", "scratch", "rf", "rf_hist", "hgb", "cnn"}
    assert (
        runs.groupby(["labels", "seed"]).train_records.nunique().eq(1).all()
    )  # same subsets for every arm
    for _, r in runs.iterrows():  # every reported metric is the one its saved predictions give
        p = load_predictions(Path(r.output_dir) / PREDICTIONS_FILE)
        m = classification_metrics(p.label, p.prob, p.event_id)
        assert r.balanced_accuracy == pytest.approx(m["balanced_accuracy"]), r.output_dir
        assert r.event_balanced_accuracy == pytest.approx(m["event_balanced_accuracy"])
    ft = cells[(cells.table == "finetune") & (cells.metric == "balanced_accuracy")]
    for _, c in ft.iterrows():
        seeds = runs[(runs.arm == c.arm) & (runs["labels"].astype(str) == str(c["labels"]))]
        assert c.value == pytest.approx(round(100 * seeds.balanced_accuracy.mean(), 1), abs=0.051)
        assert c.lo <= c.value <= c.hi and c.n_seeds == 2
    assert set(cells[cells.table == "gain"].arm) == {"mlm - scratch"}
    assert len(cells[cells.table == "vs_baseline"]) == 1
    masked = cells[(cells.table == "masked") & (cells.metric == "all/predicted_blast_fraction")]
    assert set(masked.arm) == {"mlm", "scratch"}
    text = report.read_text()
    for words in (
        "all masked",
        "source linking",
        "random forest on token histogram",
        "Budgets",
        "What was tried",
        "predicted blast",
        "Best SeisBert arm − best baseline",
    ):
        assert words in text, words


def test_tiny_study_tunes_one_grid_and_fine_tunes_the_checkpoint_it_pretrained(tiny_study):
    tmp, *_ = tiny_study
    runs = pd.read_csv(tmp / "report" / "runs.csv")
    pre = json.loads((tmp / "report" / "runs.json").read_text())["pretrain"]
    ckpt = {m["arm"]: m["base_checkpoint"] for m in pre}
    assert Path(ckpt["mlm"]).is_file() and str(tmp / "runs" / "pretrain" / "mlm") in ckpt["mlm"]
    for _, r in runs[runs.arm.isin(["mlm", "scratch"])].iterrows():
        cfg = yaml.safe_load((Path(r.output_dir) / "config.yaml").read_text())
        assert cfg["task"]["params"]["checkpoint"] == (ckpt["mlm"] if r.arm == "mlm" else None)
        assert cfg["callbacks"]["early_stopping"]["monitor"] == "val/balanced_accuracy"
        tried = json.loads(r.tried)
        assert {"0.0001", "0.0003", "0.0009", "0.0027"} <= set(tried)
    pretrain_cfg = yaml.safe_load((Path(pre[0]["output_dir"]) / "config.yaml").read_text())
    assert pretrain_cfg["callbacks"]["model_checkpoint"]["monitor"] == "val/mlm_acc_all_masked"


def test_baselines_choose_at_the_tuning_seed_and_the_other_seeds_fit_that_choice(tiny_study):
    tmp, *_ = tiny_study
    runs = pd.read_csv(tmp / "report" / "runs.csv")
    for arm in ("rf", "rf_hist", "hgb", "cnn"):
        rows = runs[runs.arm == arm].set_index("seed")
        tuning = json.loads((Path(rows.output_dir[0]) / "metrics.json").read_text())
        other = json.loads((Path(rows.output_dir[1]) / "metrics.json").read_text())
        assert len(tuning["tried"]) == 4  # the whole grid at the tuning seed
        assert [t["params"] for t in other["tried"]] == [tuning["chosen"]] == [other["chosen"]]
        assert (
            rows.chosen[0] == rows.chosen[1] and rows.tried[0] == rows.tried[1]
        )  # reported as one tuning


def test_the_scratch_grid_run_beside_pretraining_is_the_one_fine_tuning_reads(tiny_study):
    from seisbert.pipeline import TokenSet
    from seisbert.study.protocol import scratch_grid

    tmp, _, argv, _ = tiny_study
    study = load_study("quick", argv)
    runs = pd.read_csv(tmp / "report" / "runs.csv")
    meta = TokenSet.load(
        json.loads((tmp / "report" / "runs.json").read_text())["artifacts"]["tokens"]
    ).metadata
    early = {c.paths.output_dir for c in scratch_grid(study, meta)}
    assert len(early) == len(study.finetune.lr_grid) * len(study.arm_labels("scratch"))
    assert all((Path(d) / "metrics.json").is_file() for d in early)
    grid = {f"lr{lr:g}" for lr in study.finetune.lr_grid}
    made = {
        str(d)
        for d in (tmp / "runs" / "finetune" / "scratch").glob(
            f"n*/seed{study.finetune.tune_seed}/lr*"
        )
        if d.name.split("-")[0] in grid
    }
    assert made == early  # fine-tuning made no second copy of a grid run: it read these
    assert set(runs[runs.arm == "scratch"].output_dir) & early  # and one of them was chosen


def test_runs_made_two_at_a_time_equal_the_same_run_made_alone(tiny_study, tmp_path):
    from omegaconf import OmegaConf, open_dict

    from seisbert.study.protocol import run_ahead

    tmp, *_ = tiny_study
    runs = pd.read_csv(tmp / "report" / "runs.csv")
    rows = runs[runs.arm.isin(["mlm", "scratch"]) & (runs.seed == 1)]  # made in-process (jobs=1)
    cfgs = []
    for i, (_, row) in enumerate(rows.iterrows()):
        cfg = OmegaConf.load(Path(row.output_dir) / "config.yaml")
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / f"worker{i}")
        cfgs.append(cfg)
    run_ahead(cfgs, 2)  # the same runs again, two at a time in spawned worker processes
    assert len(cfgs) == 2
    for cfg, (_, row) in zip(cfgs, rows.iterrows()):
        m = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
        assert m["test/balanced_accuracy"] == pytest.approx(row.balanced_accuracy, abs=1e-6)
        assert m["val/balanced_accuracy_best"] == pytest.approx(row.dev_balanced_accuracy, abs=1e-6)


def test_tiny_study_scores_gap_filling_as_the_fill_gaps_script_does(tiny_study, tmp_path):
    tmp, report, _, _ = tiny_study
    cells = pd.read_csv(tmp / "report" / "results.csv")
    gaps = cells[cells.table == "gapfill"].set_index(["arm", "metric"]).value
    ckpt = json.loads((tmp / "report" / "runs.json").read_text())["pretrain"][0]["base_checkpoint"]
    evaluate_checkpoint(ckpt, tmp / "cache", out=tmp_path, lengths=[1, 3], max_records=20)
    script = pd.read_csv(tmp_path / "gapfill.csv")
    assert len(script) == 2 * 4 and len(gaps) == 3 * len(
        script
    )  # 2 lengths x 4 positions; model + 2 baselines
    for _, r in script.iterrows():
        key = f"{r.gap_s:g}s/{r.position}"
        assert gaps[("mlm", key)] == pytest.approx(r.model_lsd_db, abs=0.005)
        assert gaps[("interpolation", key)] == pytest.approx(r.interpolation_lsd_db, abs=0.005)
        assert gaps[("step_mean", key)] == pytest.approx(r.step_mean_lsd_db, abs=0.005)
    assert (
        "## Gap filling" in report.read_text() and "| 3 s | coda (P + 40 s) |" in report.read_text()
    )


def test_tiny_study_rerun_reuses_identical_runs_and_writes_the_readme_block(tiny_study):
    tmp, _, argv, main = tiny_study
    runs = pd.read_csv(tmp / "report" / "runs.csv")
    stamps = {d: (Path(d) / "metrics.json").stat().st_mtime_ns for d in runs.output_dir}
    gap_files = {
        p: p.stat().st_mtime_ns for p in (tmp / "runs" / "pretrain").rglob("gapfill_*.csv")
    }
    assert len(gap_files) == 1
    main(argv)
    again = pd.read_csv(tmp / "report" / "runs.csv")
    assert again.output_dir.tolist() == runs.output_dir.tolist()
    assert {d: (Path(d) / "metrics.json").stat().st_mtime_ns for d in again.output_dir} == stamps
    assert {
        p: p.stat().st_mtime_ns for p in gap_files
    } == gap_files  # gap filling read back, not scored again
    text = (tmp / "README.md").read_text()
    assert (
        "old words" not in text
        and "### Benchmarks\n\nkept 7" in text
        and text.count("<!-- results:start -->") == 1
    )
    assert check_block_against_results(text, tmp) > 20
    with pytest.raises(
        AssertionError, match="does not hold"
    ):  # the check can fail: a number drifts
        check_block_against_results(
            text.replace("<!-- results:end -->", "extra 987.6\n<!-- results:end -->"), tmp
        )


def test_the_cnn_stops_after_patience_dev_checks_without_a_better_score():
    from seisbert.baselines.cnn import CNNConfig, train_cnn

    rng = np.random.default_rng(0)
    x, y = (
        rng.normal(size=(64, 8, 6)).astype(np.float32),
        rng.integers(0, 2, 64),
    )  # no signal to learn
    xd, yd = rng.normal(size=(40, 8, 6)).astype(np.float32), rng.integers(0, 2, 40)
    common = dict(channels=[4], max_steps=100, max_epochs=100, val_every_steps=5, batch_size=64)
    stopped = train_cnn(CNNConfig(**common, patience=1), 1e-3, x, y, xd, yd, seed=0)
    full = train_cnn(CNNConfig(**common), 1e-3, x, y, xd, yd, seed=0)
    assert full.trainer.global_step == 100
    assert stopped.trainer.global_step < 100 and stopped.checks_since_best >= 1
    with pytest.raises(ValueError, match=r"baseline.patience=0 is out of range"):
        CNNConfig(patience=0)


def test_an_extra_arm_is_a_yaml_edit(tmp_path):
    """A PSD-input base model and its fine-tuning arms, given only as experiment overrides."""
    study = load_study(
        "quick",
        [
            f"run_dir={tmp_path}",
            "base_overrides=" + hlist(*TINY),
            "+pretrain.mlm_rp=" + hlist("experiment=mlm_psd_rp", "trainer.max_epochs=1"),
            "+finetune.arms.rp={overrides: ['experiment=finetune_psd'], base: mlm_rp, compare_to: "
            "rp_scratch}",
            "+finetune.arms.rp_scratch={overrides: ['experiment=scratch_psd']}",
        ],
    )
    arm = study.finetune.arms["rp"]
    cfg = compose_run(
        study, protocol_overrides(study, arm, study.budget.plan(500), None, 0, 3e-4, "/b/best.ckpt")
    )
    assert cfg.model.input == "psd" and cfg.task.params.checkpoint == "/b/best.ckpt"
    assert cfg.task.params.masked_eval is False and cfg.callbacks.test_predictions.masked is False
    with pytest.raises(ValueError, match="compare_to='nope' is not an arm"):
        load_study(
            "quick",
            ["+finetune.arms.rp={overrides: ['experiment=finetune_psd'], compare_to: nope}"],
        )


def test_the_continuous_preset_carries_every_input_and_target_beside_its_scratch_arm(tmp_path):
    """The input x target table: tokens/kmeans, psd/kmeans, psd/random_projection, psd/psd,
    both/kmeans, perceiver; each pretrained arm compared with a scratch arm of the same input and
    arch."""
    study = load_study("continuous", [f"run_dir={tmp_path}", "base_overrides=" + hlist(*TINY)])
    seen = set()
    for name, arm in study.finetune.arms.items():
        if arm.base is None or study.finetune.arms[arm.compare_to].base is not None:
            continue  # scratch arms, and the pooling ablation (below)
        base = compose_run(study, study.pretrain_args(arm.base))
        cfg = compose_run(study, arm.overrides)
        ref = compose_run(study, study.finetune.arms[arm.compare_to].overrides)
        assert (
            (cfg.model.input, cfg.model.arch)
            == (base.model.input, base.model.arch)
            == (ref.model.input, ref.model.arch)
        ), name
        assert ref.task.params.init == "scratch" and study.arm_labels(name) == [120, 500, None]
        seen.add((cfg.model.input, base.task.params.target, cfg.model.arch))
    assert seen == {
        ("tokens", "kmeans", "encoder"),
        ("psd", "kmeans", "encoder"),
        ("psd", "random_projection", "encoder"),
        ("psd", "psd", "encoder"),
        ("both", "kmeans", "encoder"),
        ("psd", "kmeans", "perceiver"),
    }
    pooled, cls = (
        compose_run(study, study.finetune.arms[a].overrides) for a in ("psd_meanpool", "psd")
    )
    assert (pooled.model.pool, cls.model.pool) == ("mean", "cls") and study.finetune.arms[
        "psd_meanpool"
    ].base == "mlm_psd"
    # quick's pool arms are left out by null entries; every base model shares quick's step budget
    assert (
        not any("_pool" in n for n in [*study.pretrain, *study.finetune.arms])
        and study.pool_curve == []
    )
    quick = load_study("quick", [f"run_dir={tmp_path}", "base_overrides=" + hlist(*TINY)])
    budget = {compose_run(quick, quick.pretrain_args("mlm")).trainer.max_steps}
    assert (
        {compose_run(study, study.pretrain_args(b)).trainer.max_steps for b in study.pretrain}
        == budget
        == {1500}
    )


def test_window_regression_cells_average_pretraining_seeds_beside_their_baselines():
    from seisbert.study.report import window_table
    from seisbert.study.results import window_cells

    runs = [
        {
            "arm": "mlm_psd_regress",
            "test/psd_mse": mse,
            "test/psd_lsd": 2 * mse,
            "test/baseline_interpolation_mse": 0.5,
            "test/baseline_interpolation_lsd": 6.0,
        }
        for mse in (0.2, 0.4)
    ]
    cells = pd.DataFrame(window_cells([*runs, {"arm": "mlm", "test/mlm_acc": 0.1}]))
    mse = cells[cells.metric == "psd_mse"].iloc[0]
    assert (mse.value, mse.lo, mse.hi, mse.n_seeds) == (pytest.approx(0.3), 0.2, 0.4, 2)
    assert (
        set(cells.arm) == {"mlm_psd_regress"} and len(cells) == 4
    )  # token models have no window rows
    row = window_table(cells)[2]
    assert row.startswith("| PSD input, PSD regression | 0.300 | – | – | 0.500 | 0.600 |"), row


@pytest.mark.parametrize("scale", ["quick", "full"])
def test_the_presets_carry_a_pool_curve_of_same_step_base_models(tmp_path, scale):
    """The pool arms: PSD input, the pool in their tokens, base models trained for the same steps,
    growing pools; fine-tuned at 120 and 500 labels at least."""
    study = load_study(scale, [f"run_dir={tmp_path}", "base_overrides=" + hlist(*TINY)])
    assert len(study.pool_curve) == {"quick": 4, "full": 2}[scale]
    pools, steps = [], set()
    for name in study.pool_curve:
        arm = study.finetune.arms[name]
        assert {120, 500} <= set(study.arm_labels(name))
        cfg = compose_run(
            study,
            protocol_overrides(study, arm, study.budget.plan(120), 120, 0, 3e-4, "/b/best.ckpt"),
        )
        base = compose_run(study, study.pretrain_args(arm.base))
        assert cfg.model.input == base.model.input == "psd" and cfg.get("unlabeled") == base.get(
            "unlabeled"
        )
        pools.append(0 if cfg.get("unlabeled") is None else cfg.unlabeled.n_events)
        steps.add(base.trainer.max_steps)
    assert (
        pools == sorted(pools)
        and pools[0] == 0
        and len(set(pools)) == len(pools)
        and len(steps) == 1
    )
    if (
        scale == "full"
    ):  # the steps ablation: the largest pool's base model, twice as long, nothing else changed
        long, base = (
            compose_run(study, study.pretrain_args(b))
            for b in ("mlm_psd_rp_pool50k_3k", "mlm_psd_rp_pool50k")
        )
        assert long.trainer.max_steps == 2 * base.trainer.max_steps
        assert (long.model, long.task, long.unlabeled) == (base.model, base.task, base.unlabeled)
        assert study.finetune.arms["psd_rp_pool50k_3k"].compare_to == "psd_rp_pool50k"


def test_targets_are_judged_on_their_intervals_and_thresholds():
    from seisbert.study.report import target_table
    from seisbert.study.results import row, target_cells

    study = load_study("quick", [])
    cells = pd.DataFrame(
        [
            row(
                "gain", "psd - scratch_psd", "120", "balanced_accuracy", 12.0, 3.0, 20.0, 2, 60
            ),  # met
            row(
                "gain", "psd - scratch_psd", "500", "balanced_accuracy", 6.5, 1.0, 12.0, 2, 60
            ),  # short
            row(
                "gain", "mlm - scratch", "120", "balanced_accuracy", 11.0, -1.0, 20.0, 2, 60
            ),  # reaches 0
            row(
                "gain", "mlm - scratch", "all", "balanced_accuracy", 30.0, 20.0, 40.0, 2, 60
            ),  # not a target count
            row(
                "gain", "psd_pool50k - psd", "120", "balanced_accuracy", 1.6, -4.3, 8.2, 2, 60
            ),  # up, spans 0
            row(
                "gain", "psd_pool5k - psd", "120", "balanced_accuracy", -3.0, -6.0, 1.0, 2, 60
            ),  # not the largest
            row("vs_baseline", "psd - hgb", "120", "balanced_accuracy", -0.5, -4.0, 3.0, 2, 60),
            row("vs_baseline", "psd - hgb", "all", "balanced_accuracy", -0.8, -3.0, 1.5, 2, 60),
            row("tokens", "mlm", "", "mlm_acc_all_masked", 8.8, 8.8, 8.8, 1),
            row("tokens", "mlm", "", "baseline_left_neighbour_acc", 5.4, 5.4, 5.4, 1),
        ]
    )
    got = pd.DataFrame(target_cells(cells, study))
    assert got[got.metric.str.endswith("/shortfall")].value.tolist() == [3.5]
    got = got[~got.metric.str.contains("/")].set_index(["metric", "arm", "labels"]).note.to_dict()
    assert got == {
        ("gain_over_scratch", "psd - scratch_psd", "120"): "met",
        ("gain_over_scratch", "psd - scratch_psd", "500"): "not met: 3.5 points short",
        ("gain_over_scratch", "mlm - scratch", "120"): "not met: its interval starts at -1.0",
        ("best_vs_baseline", "psd - hgb", "120"): "not met: 0.5 points below",
        ("best_vs_baseline_all", "psd - hgb", "all"): "met",
        ("masked_vs_left_neighbour", "mlm", ""): "not met: 1.6 < 2.0",
        ("pool_rises", "psd_pool50k - psd", "120"): "not met: its interval starts at -4.3",
    }
    lines = target_table(pd.concat([cells, pd.DataFrame(target_cells(cells, study))]))
    assert any(
        ln.startswith(
            "| pretrained − its scratch arm ≥ +10 points, interval above 0 | PSD-input "
            "MLM-pretrained − PSD-input scratch | 500 | +6.5 [1.0, 12.0] | not met"
        )
        for ln in lines
    )
    assert any("| 1.6 | not met: 1.6 < 2.0 |" in ln for ln in lines)


def test_a_named_readme_block_is_rewritten_alone_and_a_missing_one_is_refused(tmp_path):
    from seisbert.study.report import update_readme

    readme = tmp_path / "README.md"
    readme.write_text(
        "## Headline\n<!-- headline:start -->\nold 1.0\n<!-- headline:end -->\n\n"
        "## Results\n<!-- results:start -->\nquick 2.0\n<!-- results:end -->\n"
    )
    update_readme(
        readme, "<!-- headline:start -->\nnew 3.0\n<!-- headline:end -->", *markers("headline")
    )
    text = readme.read_text()
    assert "new 3.0" in text and "old 1.0" not in text and "quick 2.0" in text
    with pytest.raises(ValueError, match="no <!-- gaps:start --> ... <!-- gaps:end --> block"):
        update_readme(readme, "x", *markers("gaps"))


def test_a_block_is_written_into_the_page_the_readme_links_to_and_the_front_table_beside(
    tmp_path,
):
    results = ROOT / "reports" / "paper_full" / "results.csv"
    if not results.is_file():
        pytest.skip("no headline run yet (scripts/reproduce_paper.py scale=full writes it)")
    cells = read_cells(results)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "other.md").write_text("# other\n")
    (docs / "results.md").write_text(
        "# Results\n<!-- headline:start -->\nold 1.0\n<!-- headline:end -->\nkept 7\n"
    )
    readme = tmp_path / "README.md"
    front = "<!-- headline-front:start -->\nold 2.0\n<!-- headline-front:end -->"
    readme.write_text(
        f"# x\n[other](docs/other.md) [web](https://example.org/a.md)\n{front}\n"
        "[every table](docs/results.md#results)\n"
    )
    pages = write_blocks(readme, cells, results, results.parent / "REPORT.md", "headline")
    assert pages == [docs / "results.md", readme]
    page = (docs / "results.md").read_text()
    assert "old 1.0" not in page and page.endswith("kept 7\n") and "](../" in page
    assert check_block_against_results(page, docs, "headline") > 20  # its links work from docs/
    text = readme.read_text()
    assert "old 2.0" not in text and "](docs/results.md)" in text
    assert check_block_against_results(text, tmp_path, "headline-front") > 20
    start, end = markers("headline-front")
    block = text[text.index(start) : text.index(end)]
    assert sum(ln.startswith("| ") for ln in block.splitlines()) - 1 <= FRONT_ROWS
    # a study whose block neither the README nor its pages hold is refused, naming the markers
    (docs / "results.md").write_text("# Results\n")
    readme.write_text("# x\n[every table](docs/results.md)\n")
    with pytest.raises(ValueError, match="no <!-- headline:start -->"):
        write_blocks(readme, cells, results, results.parent / "REPORT.md", "headline")


def test_the_front_table_keeps_the_arms_measured_at_the_most_label_counts():
    from seisbert.study.report import front_arms, front_table

    rows = [("setup", "", "", k, v) for k, v in (("seeds", 2), ("records", 9), ("events", 3))]
    arms = {f"a{i}": ("50", "120", "all") for i in range(9)}
    arms |= {"short": ("120",), "mid": ("50", "all"), "late": ("120",)}
    rows += [
        ("finetune", a, n, "balanced_accuracy", 60.0) for a, sizes in arms.items() for n in sizes
    ]
    cells = pd.DataFrame(rows, columns=["table", "arm", "labels", "metric", "value"])
    cells["lo"], cells["hi"] = cells.value - 1, cells.value + 1
    shown, left = front_arms(cells, max_rows=10)
    assert shown == [*[f"a{i}" for i in range(9)], "mid"] and left == ["short", "late"]
    lines = front_table(cells, max_rows=10)
    assert lines[0] == "| model | 50 labels | 120 labels | all labels |" and len(lines) == 12


@pytest.mark.parametrize(
    "override, match",
    [
        (
            "finetune.arms.mlm.labels=[50]",
            r"arms.mlm.labels=\[50\] must be a subset of study.label_sizes",
        ),
        (
            "pool_curve=[scratch]",
            "pool_curve names 'scratch', which is not a pretrained fine-tuning arm",
        ),
        ("jobs=0", "study.jobs=0 must be at least 1"),
    ],
)
def test_the_paper_schema_refuses_bad_arm_labels_pool_curves_and_jobs(override, match):
    with pytest.raises(ValueError, match=match):
        load_study("quick", [override])


def test_the_input_target_table_takes_each_arm_from_the_first_results_file_holding_it(tmp_path):

    def results(path, arms):
        rows = [
            ("finetune", a, n, "balanced_accuracy", v, v - 3, v + 3, 2, 60)
            for a, v in arms.items()
            for n in ("120", "all")
        ]
        rows.append(
            ("gain", "psd_rp - scratch_psd", "120", "balanced_accuracy", 9.5, 2.0, 17.0, 2, 60)
        )
        rows.append(
            ("gain", "psd_rp - scratch_psd", "500", "balanced_accuracy", 12.5, 4.0, 20.0, 2, 60)
        )
        rows.append(
            ("finetune", "psd_rp", "120", "accuracy", 11.1, 10.0, 12.0, 2, 60)
        )  # not balanced: left out
        pd.DataFrame(
            rows,
            columns=[
                "table",
                "arm",
                "labels",
                "metric",
                "value",
                "lo",
                "hi",
                "n_seeds",
                "n_events",
            ],
        ).to_csv(path, index=False)

    results(tmp_path / "new.csv", {"psd_rp": 88.1, "scratch_psd": 80.2, "hgb": 85.3})
    results(tmp_path / "old.csv", {"mlm": 87.4, "hgb": 61.0, "psd_rp": 10.0})
    pd.DataFrame(
        {
            "arm": ["scratch_psd", "psd_rp"],
            "labels": ["500", "500"],
            "seed": [1, 1],
            "chosen": ['{"lr": 0.0027}', '{"lr": 0.0003}'],
            "dev_balanced_accuracy": [0.5, 0.5],
            "balanced_accuracy": [0.5, 0.61],
        }
    ).to_csv(tmp_path / "runs.csv", index=False)  # beside both
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n<!-- input-target:start -->\nold 1.0\n<!-- input-target:end -->\nkept 7\n"
    )
    input_target_table(
        [tmp_path / "new.csv", tmp_path / "old.csv"], out=tmp_path / "out", readme=readme
    )
    cells = pd.read_csv(tmp_path / "out" / "input_target.csv")
    fine = cells[cells.table == "finetune"].groupby("arm").value.agg(set).to_dict()
    assert fine == {
        "psd_rp": {88.1},
        "scratch_psd": {80.2},
        "hgb": {85.3},
        "mlm": {87.4},
    }  # first file wins
    assert set(cells[cells.arm == "mlm"].source) == {str(tmp_path / "old.csv")}
    overlap = cells[cells.table == "overlap"].set_index("arm").value.to_dict()
    assert overlap == {
        "psd_rp": pytest.approx(78.1),
        "hgb": pytest.approx(24.3),
    }  # |88.1 - 10.0|, |85.3 - 61.0|
    text = readme.read_text()
    assert (
        "old 1.0" not in text
        and text.endswith("kept 7\n")
        and "| PSD | random projection | encoder | 88.1 [85.1, 91.1]" in text
    )
    assert "largest difference between their cells (points): psd_rp 78.1; hgb 24.3." in text
    assert (
        "+9.5 [2.0, 17.0]" in text
    )  # 9.5 < 10 at 120 labels: the scratch target is missed although 500 meets it
    # a constant classifier is named once (both files share its runs.csv); a dev-only 0.5 is not
    assert (
        text.count("Collapsed to one class: `scratch_psd` at `500` labels, seed `1`, lr `0.0027`")
        == 1
    )
    assert "`psd_rp` at `500`" not in text
    assert (
        "Met by: none. Missed by: psd_rp (+9.5 [2.0, 17.0] at `120`, +12.5 [4.0, 20.0] at `500`)."
        in text
    )
    assert check_block_against_results(text, tmp_path, "input-target") > 10


def test_pretraining_curve_cells_say_where_a_base_model_stopped(tmp_path):
    from seisbert.study.results import curve_cells

    (tmp_path / "csv" / "version_0").mkdir(parents=True)
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(
            {"task": {"monitor": "val/mlm_acc_all_masked", "params": {"batch_size": 64}}}
        )
    )
    pd.DataFrame(
        {
            "step": [299, 299, 599, 899, 1199, 1499],
            "train/loss": [1, np.nan, 1, 1, 1, 1],
            "val/mlm_acc_all_masked": [np.nan, 0.05, 0.08, 0.09, 0.092, 0.095],
        }
    ).to_csv(tmp_path / "csv" / "version_0" / "metrics.csv", index=False)
    cells = pd.DataFrame(
        curve_cells([{"arm": "mlm", "output_dir": str(tmp_path), "pretrain_records": 2400}])
    )
    got = cells.set_index("metric").value.to_dict()
    # the middle of its 5 checks: step 900, 0.09
    assert got == {
        "dev_last": 9.5,
        "rise_first_half": 4.0,
        "rise_second_half": 0.5,
        "steps": 1500,
        "records": 2400,
        "passes": 40.0,
    }
    assert set(cells.note) == {"val/mlm_acc_all_masked"}


def test_missed_targets_get_their_shortfall_and_the_measured_evidence():
    from seisbert.study.report import budget_table, missed_lines, results_lines, setup_sentence
    from seisbert.study.results import row, target_cells

    study = load_study("quick", [])
    setup = {
        "records": 900,
        "events": 200,
        "test_records": 100,
        "test_events": 40,
        "seeds": 1,
        "pretrain_seeds": 1,
        "lr_grid_size": 4,
        "ci_level": 95,
        "budget_epochs": 10,
        "budget_min_steps": 200,
        "patience": 2,
        "minutes": 3.0,
        "invocation_minutes": 1.0,
    }
    cells = pd.DataFrame(
        [
            *[row("setup", "", "", k, v) for k, v in setup.items()],
            row("finetune", "psd", "120", "balanced_accuracy", 80.0, 75.0, 85.0, 1, 40),
            row(
                "finetune", "scratch_psd", "500", "balanced_accuracy", 74.0, 69.0, 79.0, 1, 40
            ),  # not run at 120
            row("budget", "psd", "120", "epochs", 50),
            row("budget", "psd", "120", "steps", 200),
            row("gain", "psd - scratch_psd", "120", "balanced_accuracy", 6.0, -0.5, 12.5, 1, 40),
            row("gain", "psd_pool50k - psd", "120", "balanced_accuracy", 2.0, 0.5, 3.5, 1, 40),
            row("base", "psd", "", "base_model", np.nan, note="mlm_psd"),
            row("collapsed", "scratch_psd", "120", "seed", 1, note='chosen {"lr": 0.0027}'),
            *[
                row("pretrain_curve", "mlm_psd", "", m, v, note="val/mlm_acc_all_masked")
                for m, v in {
                    "rise_first_half": 2.0,
                    "rise_second_half": 0.5,
                    "steps": 1500,
                    "passes": 41.1,
                }.items()
            ],
        ]
    )
    cells = pd.concat([cells, pd.DataFrame(target_cells(cells, study))], ignore_index=True)
    text = "\n".join(missed_lines(cells))
    assert (
        "PSD-input MLM-pretrained − PSD-input scratch at 120 labels: +6.0 [-0.5, 12.5], not met: "
        "4.0 points short; "
        "rests on a collapsed run (scratch_psd seed 1)." in text
    )
    assert (
        '- PSD-input scratch at 120 labels, seed 1 (chosen {"lr": 0.0027} at the tuning seed)'
        in "\n".join(results_lines(cells))
    )
    assert "The widest interval spans 13.0 points (40 test events, 1 seed)" in text
    assert "all-masked accuracy moved +2.0, then +0.5 over the two halves of its 1500 steps" in text
    assert "(each pretraining record seen 41.1 times): still rising, but slowing" in text
    assert (
        "PSD-input MLM + large pool − PSD-input MLM-pretrained at 120 labels +2.0 [0.5, 3.5]"
        in text
    )  # ablation
    assert "largest pool" not in text  # met (its interval lies above 0): not a missed target
    sentence = setup_sentence(cells)
    assert "1 fine-tuning seed, 1 pretraining seed per base model." in sentence
    fewer = pd.concat(
        [
            cells,
            pd.DataFrame(
                [
                    row("setup", "", "", "pretrain_seeds", 3),
                    row("setup", "a", "", "pretrain_seeds", 1),
                    row("setup", "b", "", "pretrain_seeds", 1),
                ]
            ),
        ]
    )
    fewer = fewer.drop_duplicates(["table", "arm", "metric"], keep="last")
    assert "3 pretraining seeds per base model (1 for a, b)." in setup_sentence(fewer)
    assert "intervals over test events. Percent" in sentence  # one seed: no "and seeds"
    assert (
        "reused" not in sentence
    )  # a results file without the tuning-seed row claims nothing about it
    tuned = pd.concat([cells, pd.DataFrame([row("setup", "", "", "tune_seed", 2)])])
    assert (
        "the CNN and trees a grid of the same size, every arm at fine-tuning seed 2, its choice "
        "reused for the other seeds; every neural arm"
    ) in setup_sentence(tuned)
    assert budget_table(cells)[2:] == [
        "| PSD-input MLM-pretrained | 50/200 | – |",
        "| PSD-input scratch | – | fit to completion |",
    ]


def test_run_cost_sums_run_durations_not_the_gaps_between_sessions(tmp_path):
    from seisbert.study.protocol import runs_seconds

    for name, start, end in (("a", 1000, 1100), ("b", 90_000, 90_030)):  # b made a day later
        d = tmp_path / name
        d.mkdir()
        for f, t in (("config.yaml", start), ("metrics.json", end)):
            (d / f).write_text("{}")
            os.utime(d / f, (t, t))
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "config.yaml").write_text("{}")
    assert runs_seconds([tmp_path / "a", tmp_path / "b", tmp_path / "unfinished"]) == pytest.approx(
        130
    )
