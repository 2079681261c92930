# Driver of the input x target quick measurement (docs/model.md), as run: /tmp paths, a snapshot of HEAD as ROOT.
"""Input x target quick measurement: psd-input vs token-input SeisBert, pretrained vs scratch, lr chosen on dev."""
import json, subprocess, sys, time
from pathlib import Path
ROOT = Path("/tmp/measure15/src2"); OUT = Path("/tmp/measure15/runs")
BASE = ["data.n_events=600", "model=small", "torch_threads=1", "logger=csv", "~callbacks.progress_bar",
        "trainer.enable_progress_bar=false", "paths.cache_dir=/tmp/measure15/cache"]
PRE = {"psd": ["experiment=mlm_psd"], "tok": ["experiment=mlm"]}
ARMS = {"psd_mlm": ["experiment=finetune_psd"], "psd_scratch": ["experiment=scratch_psd"],
        "tok_mlm": ["experiment=finetune"], "tok_scratch": ["experiment=scratch"]}
LR = {"tok_mlm": [1e-4, 3e-4], "psd_mlm": [1e-4, 3e-4], "tok_scratch": [1e-3, 3e-4], "psd_scratch": [1e-3, 3e-4]}
EPOCHS = {None: 4}
def run(name, ov):
    out = OUT / name
    while out.exists() and not (out / "metrics.json").exists():  # another driver is on it
        time.sleep(20)
    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    t = time.time()
    subprocess.run([sys.executable, "train.py", *BASE, *ov, f"hydra.run.dir={out}"], cwd=ROOT, check=True,
                   stdout=open(OUT / f"{name}.log", "w"), stderr=subprocess.STDOUT)
    m = json.loads((out / "metrics.json").read_text()); print(name, f"{time.time()-t:.0f}s", flush=True); return m
OUT.mkdir(parents=True, exist_ok=True)
arms = sys.argv[1:] or list(ARMS)
for p, ov in PRE.items():
    if not any(a == f"{p}_mlm" for a in arms):
        continue
    m = run(f"pre_{p}", [*ov, "trainer.max_epochs=8"])
    print(p, {k: round(v, 4) for k, v in m.items() if isinstance(v, float) and k.startswith("test/")}, flush=True)
rows = {}
for arm in arms:
    for labels in EPOCHS:
        best = None
        for lr in (LR[arm] if labels is None else [rows[f"{arm} labels=None"]["lr"]]):  # 120: the lr chosen with all labels
            name = f"{arm}_L{labels}_lr{lr:g}"
            m = run(name, [*ARMS[arm], f"task.params.lr={lr}", f"task.params.labels={'null' if labels is None else labels}",
                           f"trainer.max_epochs={EPOCHS[labels]}"])
            if best is None or m["val/balanced_accuracy_best"] > best[1]["val/balanced_accuracy_best"]:
                best = (lr, m)
        lr, m = best
        rows[f"{arm} labels={labels}"] = dict(lr=lr, dev=m["val/balanced_accuracy_best"], test=m["test/balanced_accuracy"],
                                              test_event=m["test/event_balanced_accuracy"])
        print(arm, labels, rows[f"{arm} labels={labels}"], flush=True)
(OUT / f"grid_summary_{'_'.join(arms)}.json").write_text(json.dumps(rows, indent=2))
if False:
    m = run("hgb", ["experiment=baseline_hgb"]); print("hgb", {k: v for k, v in m.items() if "balanced" in k}, flush=True)
