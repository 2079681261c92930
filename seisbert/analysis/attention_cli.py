"""Attention views of a pretrained (or fine-tuned) model: the paper's Figs. 8-10.

    python scripts/attention.py --row 12           # one record, newest cache/mlm model
    python scripts/attention.py --event-id syn000042 --station-id SY.S007 --layer 2 --time-step 16
    python scripts/attention.py --batch 3 --out reports/attention  # 3 per class + index.html
    python scripts/attention.py --checkpoint cache/mlm/<hash>/model.ckpt \
        --tokens cache/tokens/<hash> ...

Without --checkpoint the newest ``<cache-dir>/mlm/*/model.ckpt`` is used, with the tokens
named in its ``model.json``, the features named in ``tokens.json`` and the records
artifact of those features (explicit --tokens/--features/--records win). Per record it
writes bulk_tNN.png (summed attention + rollout along the waveform, Fig. 10),
heads_lL_tNN.png (all heads of one layer, Fig. 9), matrices.png (every layer and head),
bulk.gif (one frame per time step) and bertviz head_view.html / model_view.html
(needs ``pip install bertviz``). ``--time-step`` counts windows from 1 (window 1 starts
10 s before P); the default is the first window after the P pick.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm.auto import tqdm

from seisbert.analysis import attention as A
from seisbert.analysis import attention_plots as plots
from seisbert.artifacts import paths as artifacts

log = logging.getLogger("seisbert.attention")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--checkpoint", type=Path, help="model.ckpt (default: newest <cache-dir>/mlm/*/model.ckpt)"
    )
    ap.add_argument("--cache-dir", type=Path, default=Path("cache"))
    ap.add_argument(
        "--task", default="mlm", help="cache folder searched without --checkpoint (mlm, mlm_nsp)"
    )
    ap.add_argument(
        "--tokens", type=Path, help="tokens artifact folder (tokens.npy, metadata.parquet)"
    )
    ap.add_argument("--features", type=Path, help="features artifact folder (PSD windows)")
    ap.add_argument("--records", type=Path, help="records artifact folder (waveforms)")
    pick = ap.add_mutually_exclusive_group()
    pick.add_argument("--row", type=int, help="row of the record in the tokens/features metadata")
    pick.add_argument(
        "--event-id", help="event of the record (its first station unless --station-id)"
    )
    pick.add_argument(
        "--batch", type=int, metavar="N", help="N records of each class and an index.html"
    )
    ap.add_argument("--station-id")
    ap.add_argument("--split", default="test", help="split the --batch records come from")
    ap.add_argument(
        "--layer", type=int, default=-1, help="layer of the head grid (0-based; -1: last)"
    )
    ap.add_argument(
        "--time-step", type=int, help="query window t in 1..T (default: the window after P)"
    )
    ap.add_argument("--model", default="ak135", help="TauP velocity model")
    ap.add_argument(
        "--phases", default=",".join(A.DEFAULT_PHASES), help="TauP phase list, comma-separated"
    )
    ap.add_argument("--fps", type=float, default=4.0, help="animation frames per second")
    ap.add_argument("--no-animation", action="store_true")
    ap.add_argument("--no-bertviz", action="store_true")
    ap.add_argument("--seed", type=int, default=0, help="which records --batch draws")
    ap.add_argument("--out", type=Path, default=Path("reports/attention"))
    args = ap.parse_args(argv)
    if args.row is None and args.event_id is None and args.batch is None:
        args.row = 0
    return args


def load_inputs(args: argparse.Namespace):
    """The encoder and the artifacts that belong to it."""
    checkpoint = args.checkpoint or artifacts.newest_checkpoint(args.cache_dir, args.task)
    paths = artifacts.resolve_artifacts(
        checkpoint, args.cache_dir, args.tokens, args.features, args.records
    )
    log.info(
        "checkpoint %s; tokens %s; features %s; records %s",
        checkpoint,
        paths["tokens"],
        paths["features"],
        paths["records"],
    )
    for kind in ("features", "records"):
        if paths[kind] is None:
            log.warning(
                "no %s artifact found: the views are drawn without %s (pass --%s)",
                kind,
                "PSD windows" if kind == "features" else "waveforms",
                kind,
            )
    return A.load_encoder(checkpoint), A.Artifacts.load(
        paths["tokens"], paths["features"], paths["records"]
    )


def views_for_row(encoder, art: A.Artifacts, row: int, args, out_dir: Path):
    view = A.record_view(encoder, art, row, tuple(args.phases.split(",")), args.model)
    layer = args.layer % encoder.cfg.layers
    query = view.step_of(0.0) if args.time_step is None else args.time_step - 1
    if not 0 <= query < view.n_steps:
        raise ValueError(
            f"--time-step={args.time_step} is out of range; allowed [1, {view.n_steps}]"
        )
    files = plots.write_record_views(
        view,
        out_dir,
        layer,
        query,
        animate=not args.no_animation,
        bertviz=not args.no_bertviz,
        fps=args.fps,
    )
    return view, files


def main(argv=None) -> list[Path]:
    args = parse_args(argv)
    encoder, art = load_inputs(args)
    if args.batch is not None:
        rows = A.pick_rows(art.metadata, args.batch, args.split, args.seed)
    else:
        rows = [A.select_row(art.metadata, args.row, args.event_id, args.station_id)]
    entries = []
    for row in tqdm(rows, desc="attention views", unit="record", disable=len(rows) == 1):
        m = art.metadata.iloc[row]
        name = f"{m.get('source_type', m.get('label'))}_{m['event_id']}_{m['station_id']}".replace(
            "/", "-"
        )
        entries.append(views_for_row(encoder, art, row, args, args.out / name))
    index = plots.write_index(entries, args.out)
    for view, files in entries:
        print(
            f"{view.title()}: TauP after P "
            + ", ".join(f"{k} {v:+.1f} s" for k, v in view.arrivals.items())
            + f" -> {files['bulk'].parent}"
        )
    print(index)
    return [index]
