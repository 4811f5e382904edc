"""Train the linear baseline, FastText, TextCNN and LSTM with the default settings on
THUCNews-45k, on two slices of it (1,000 and 5,000 training lines) and on a long-text corpus
built from it; one table, each model next to the linear model of the same corpus and run.

    python benchmarks/train_thucnews.py [--data DIR] [--out benchmarks/results] [--models ...]
        [--corpora full 1k 5k long] [--update]

A slice takes the first N lines of train (the file is shuffled), the first 1,000 of dev and
every 5th line of test (the file is sorted by class), 2,000 lines. The long-text corpus
(`make_long_texts`) joins headlines of one topic into 1,000 / 300 / 600 texts of median
about 120 characters and 95th percentile about 500, like the review corpus of issue 15, each
split from its own file.

The data folder comes from --data or $NEWSDESK_DATA; its `char_embeddings_200d.npz` (when
present) is passed as --embeddings to TextCNN and LSTM. Each model trains in its own child
process through `newsdesk train` into a fresh temporary SQLite store, so peak RSS is per
model; the numbers are read back from the store (the stored point count included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker import schema  # noqa: E402
from trainers.catalogue import BUILT_IN  # noqa: E402

MODELS = tuple(spec.name for spec in BUILT_IN)  # newsdesk's own models, the catalogue's order
CORPORA = {"full": None, "1k": 1000, "5k": 5000, "long": "long"}
LONG_TEXTS = {"train": 1000, "dev": 300, "test": 600}
# As in the reference project: pretrained character vectors for TextCNN and the LSTM only;
# FastText learns its unigram and bigram tables from scratch (measured 89.2% with the vectors,
# 89.7% without, on this split).
WITH_VECTORS = ("textcnn", "lstm")
REFERENCE = {  # Chinese-Text-Classification-Pytorch on this machine, same split (issue 3)
    "linear": {"test_acc": None, "wall_s": None, "note": "TF-IDF + LinearSVC: 90.78% / 4 s"},
    "fasttext": {
        "test_acc": None,
        "wall_s": None,
        "note": "0.83 s/step, 85.1% val after 1,000 steps",
    },
    "textcnn": {"test_acc": 0.8775, "wall_s": 377},
    "lstm": {"test_acc": 0.8674, "wall_s": 629},
}


def child(argv: list[str]) -> int:
    """Run `newsdesk train` in this process, then print peak RSS as the last line."""
    sys.path.insert(0, str(ROOT))
    from tracker.cli import main

    code = main(argv)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"exit_code": code, "peak_rss_mib": peak_kib / 1024}))
    return code


def make_slice(data: Path, target: Path, train_lines: int) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    (target / "class.txt").write_bytes((data / "class.txt").read_bytes())
    picks = {"train": (train_lines, 1), "dev": (1000, 1), "test": (2000, 5)}
    for split, (count, every) in picks.items():
        lines = (data / f"{split}.txt").read_text(encoding="utf-8").splitlines(keepends=True)
        (target / f"{split}.txt").write_text("".join(lines[::every][:count]), encoding="utf-8")
    return target


def make_long_texts(data: Path, target: Path) -> Path:
    """Texts of 2 to 40 consecutive headlines of one topic (a log-normal count, median 6, so
    median about 120 characters), topics in turn; no headline is used twice."""
    import numpy as np

    target.mkdir(parents=True, exist_ok=True)
    (target / "class.txt").write_bytes((data / "class.txt").read_bytes())
    rng = np.random.default_rng(15)
    for split, n in LONG_TEXTS.items():
        by_label: dict[str, list[str]] = {}
        for line in (data / f"{split}.txt").read_text(encoding="utf-8").splitlines():
            text, label = line.rsplit("\t", 1)
            by_label.setdefault(label, []).append(text)
        labels, taken, rows = sorted(by_label), dict.fromkeys(by_label, 0), []
        for i in range(n):
            label = labels[i % len(labels)]
            count = int(np.clip(round(rng.lognormal(np.log(6), 0.9)), 2, 40))
            start = taken[label]
            taken[label] += count
            rows.append("。".join(by_label[label][start : start + count]) + f"\t{label}")
        (target / f"{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return target


def corpus_folder(data: Path, folder: Path, corpus: str) -> Path:
    lines = CORPORA[corpus]
    if lines is None:
        return data
    if lines == "long":
        return make_long_texts(data, folder / corpus)
    return make_slice(data, folder / corpus, int(lines))


def train_one(
    model: str, data: Path, store: str, extra: list[str], corpus: str, vectors: Path
) -> dict:
    argv = [
        "train",
        "--model",
        model,
        "--data",
        str(data),
        "--tracking-uri",
        store,
        "--experiment",
        f"bench-thucnews-{corpus}",
        "--quiet",
        *extra,
    ]
    if vectors.exists() and model in WITH_VECTORS:
        argv += ["--embeddings", str(vectors)]
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(argv)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{model} failed:\n{proc.stderr[-3000:]}")
    child_report = json.loads(proc.stdout.strip().splitlines()[-1])
    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name(f"bench-thucnews-{corpus}")
    run = client.search_runs([exp.experiment_id], filter_string=f"tags.model = '{model}'")[0]
    m = run.data.metrics
    stored = sum(len(client.get_metric_history(run.info.run_id, k)) for k in m)
    steps = int(len(client.get_metric_history(run.info.run_id, schema.TRAIN_LOSS)))
    return {
        "corpus": corpus,
        "train_lines": int(run.data.params["data.train_size"]),
        "pad_size": run.data.params.get("data.pad_size"),
        "model": model,
        "run_id": run.info.run_id,
        "test_acc": m[schema.TEST_ACC],
        "test_macro_f1": m[schema.TEST_MACRO_F1],
        "train_seconds": m[schema.TRAIN_SECONDS],
        "run_wall_s": m[schema.WALL_TIME_S],
        "process_wall_s": wall,
        "steps": max(steps, 1),
        "steps_per_s": max(steps, 1) / m[schema.TRAIN_SECONDS],
        "samples_per_s": m[schema.SAMPLES_PER_S],
        "peak_rss_mib": child_report["peak_rss_mib"],
        "stored_points": stored,
    }


def render(result: dict) -> str:
    lines = [
        "# Training on THUCNews-45k, two slices and a long-text corpus",
        "",
        f"Machine: {result['machine']}; data: `{result['data']}`; default settings"
        f"{' (pretrained char vectors for textcnn and lstm)' if result['embeddings'] else ''}; "
        "Δ is the difference to the linear model of the same corpus in this run; pad is the "
        "derived `data.pad_size` (tokens).",
        "",
        "| corpus | model | test acc | Δ linear | macro F1 | wall (run) | steps | samples/s "
        "| pad | peak RSS | stored points | reference acc / wall |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    linear = {r["corpus"]: r["test_acc"] for r in result["models"] if r["model"] == "linear"}
    for r in result["models"]:
        ref = REFERENCE[r["model"]] if r["corpus"] == "full" else {"test_acc": None}
        ref_text = (
            f"{ref['test_acc']:.2%} / {ref['wall_s']} s" if ref["test_acc"] else ref.get("note", "")
        )
        base = linear.get(r["corpus"])
        delta = "" if base is None or r["model"] == "linear" else f"{r['test_acc'] - base:+.2%}"
        lines.append(
            f"| {r['corpus']} ({r['train_lines']:,}) | {r['model']} | {r['test_acc']:.2%} | "
            f"{delta} | {r['test_macro_f1']:.4f} | {r['run_wall_s']:.0f} s | {r['steps']} | "
            f"{r['samples_per_s']:,.0f} | {r.get('pad_size') or ''} | "
            f"{r['peak_rss_mib']:.0f} MiB | "
            f"{r['stored_points']:,} | {ref_text} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", default=os.environ.get("NEWSDESK_DATA"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=CORPORA)
    parser.add_argument(
        "--store",
        type=Path,
        default=None,
        help="keep the runs in this folder's mlflow.db (default: a temporary one)",
    )
    parser.add_argument(
        "--extra",
        nargs=argparse.REMAINDER,
        default=[],
        help="further `newsdesk train` options, e.g. --set train.lr=2e-3",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="keep the rows of the corpora not run from the existing report in --out "
        "(each corpus keeps its linear model from the same run)",
    )
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    if not args.data:
        parser.error("give --data or set NEWSDESK_DATA to the THUCNews folder")
    data = Path(args.data).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.store.resolve() if args.store else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        store = f"sqlite:///{folder / 'mlflow.db'}"
        rows = []
        vectors = data / "char_embeddings_200d.npz"
        for corpus in args.corpora:
            folder_c = corpus_folder(data, folder, corpus)
            for model in args.models:
                rows.append(train_one(model, folder_c, store, args.extra, corpus, vectors))
                print(json.dumps(rows[-1]), flush=True)
    report = args.out / "train_thucnews.json"
    if args.update and report.exists():
        kept = [
            r for r in json.loads(report.read_text())["models"] if r["corpus"] not in args.corpora
        ]
        rows = kept + rows
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "data": str(args.data),
        "embeddings": (data / "char_embeddings_200d.npz").exists(),
        "models": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(result, indent=2) + "\n")
    markdown = render(result)
    (args.out / "train_thucnews.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
