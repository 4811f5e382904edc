"""Dashboard-side timings: loading metric histories, and predicting 10,000 headlines.

    python benchmarks/dashboard.py [--data DIR] [--out benchmarks/results] [--tracking-uri URI]

1. `metric_history` for 3 runs x 5 keys x 10,000 steps (150,000 points), logged through
   TrainingLogger into a fresh SQLite store (or --tracking-uri), bar: under 2 s.
2. `newsdesk predict --file` on the 10,000 test headlines of THUCNews with each of the three
   models (trained for 20 steps: prediction cost does not depend on training), bar: under 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker import TrainingLogger, schema  # noqa: E402
from tracker.dashboard.compare import metric_history  # noqa: E402
from tracker.dashboard.predict import load_model, predict, read_headlines  # noqa: E402
from trainers.cli import main as newsdesk  # noqa: E402

KEYS = [*schema.STEP_METRICS[:3], *schema.VAL_METRICS]


def bench_history(uri: str, steps: int) -> dict:
    run_ids = []
    for i in range(3):
        with TrainingLogger("bench-history", run_name=f"run{i}", tracking_uri=uri) as log:
            for step in range(1, steps + 1):
                log.log_metrics({k: (i + 1) / step for k in KEYS}, step=step)
        run_ids.append(log.run_id)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        frame = metric_history(run_ids, KEYS, tracking_uri=uri)
        timings.append(time.perf_counter() - started)
    return {
        "runs": 3,
        "keys": len(KEYS),
        "steps": steps,
        "points": len(frame),
        "seconds_best": min(timings),
        "seconds_all": timings,
    }


def bench_predict(data: Path, folder: Path) -> list[dict]:
    uri = f"sqlite:///{folder / 'predict' / 'mlflow.db'}"
    headlines = folder / "headlines.txt"
    lines = (data / "test.txt").read_text(encoding="utf-8").splitlines()
    headlines.write_text(
        "\n".join(line.rsplit("\t", 1)[0] for line in lines) + "\n", encoding="utf-8"
    )
    texts = read_headlines(headlines)
    rows = []
    for model in ("linear", "fasttext", "textcnn", "lstm"):
        code = newsdesk(
            [
                "train",
                "--model",
                model,
                "--data",
                str(data),
                "--tracking-uri",
                uri,
                "--experiment",
                f"bench-{model}",
                "--max-steps",
                "20",
                "--quiet",
            ]
        )
        assert code == 0
        assert newsdesk(["promote", "--experiment", f"bench-{model}", "--tracking-uri", uri]) == 0
        started = time.perf_counter()
        loaded = load_model(f"models:/bench-{model}-classifier@champion", uri)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        frame = predict(loaded, texts, top_k=3)
        predict_s = time.perf_counter() - started
        started = time.perf_counter()
        out = folder / f"{model}.csv"
        assert (
            newsdesk(
                [
                    "predict",
                    "--model-uri",
                    f"models:/bench-{model}-classifier@champion",
                    "--tracking-uri",
                    uri,
                    "--file",
                    str(headlines),
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        cli_s = time.perf_counter() - started
        rows.append(
            {
                "model": model,
                "headlines": len(frame),
                "predict_s": predict_s,
                "load_s": load_s,
                "cli_end_to_end_s": cli_s,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("NEWSDESK_DATA"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--tracking-uri", default=None, help="store for the history part")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--name", default="dashboard")
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("give --data or set NEWSDESK_DATA to the THUCNews folder")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        uri = args.tracking_uri or f"sqlite:///{folder / 'history' / 'mlflow.db'}"
        history = bench_history(uri, args.steps)
        predictions = bench_predict(Path(args.data).resolve(), folder)
    result = {
        "metric_history": history,
        "predict": predictions,
        "store": args.tracking_uri or "sqlite (fresh, temporary)",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Dashboard timings",
        "",
        f"Store: {result['store']}.",
        "",
        f"`metric_history`: {history['runs']} runs x {history['keys']} keys x "
        f"{history['steps']:,} steps = {history['points']:,} points in "
        f"**{history['seconds_best']:.2f} s** (best of 3; bar < 2 s).",
        "",
        "| model | headlines | predict | model load | `newsdesk predict --file` end to end |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['headlines']:,} | {r['predict_s']:.2f} s | "
        f"{r['load_s']:.2f} s | {r['cli_end_to_end_s']:.2f} s |"
        for r in predictions
    ]
    markdown = "\n".join(lines) + "\n"
    (args.out / f"{args.name}.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
