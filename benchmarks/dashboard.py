"""Dashboard-side timings: loading metric histories, and predicting 10,000 headlines.

    python benchmarks/dashboard.py [--data DIR] [--out benchmarks/results] [--tracking-uri URI]
                                   [--rounds 3]

1. `metric_history` for 3 runs x 8 keys x 10,000 steps (240,000 points), logged through
   TrainingLogger into a fresh SQLite store (or --tracking-uri), bar: under 2 s.
2. `newsdesk predict --file` on the 10,000 test headlines of THUCNews with the linear model
   and the three neural ones (trained for 20 steps: prediction cost does not depend on
   training), in this process (issue 15's bar: 2 s) and as a fresh process; `--rounds`
   rounds with the models interleaved, minimum and maximum reported.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker import TrainingLogger, schema  # noqa: E402
from tracker.cli import main as newsdesk  # noqa: E402
from tracker.dashboard.compare import metric_history  # noqa: E402
from tracker.dashboard.predict import load_model, predict, read_headlines  # noqa: E402

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


def bench_predict(data: Path, folder: Path, rounds: int) -> list[dict]:
    """Each model trained and promoted once, then `rounds` rounds, the models interleaved in
    each: load, predict, the `predict --file` command in this process, and the same command
    as a fresh process (Python start and imports included). Minimum and maximum per model."""
    uri = f"sqlite:///{folder / 'predict' / 'mlflow.db'}"
    headlines = folder / "headlines.txt"
    lines = (data / "test.txt").read_text(encoding="utf-8").splitlines()
    headlines.write_text(
        "\n".join(line.rsplit("\t", 1)[0] for line in lines) + "\n", encoding="utf-8"
    )
    texts = read_headlines(headlines)
    models = ("linear", "fasttext", "textcnn", "lstm")
    for model in models:
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
    times: dict[str, dict[str, list[float]]] = {m: {} for m in models}
    for _ in range(rounds):
        for model in models:
            for key, seconds in _one_round(model, uri, texts, headlines, folder).items():
                times[model].setdefault(key, []).append(seconds)
    return [
        {
            "model": model,
            "headlines": len(texts),
            "rounds": rounds,
            **{f"{key}_s": min(values) for key, values in times[model].items()},
            **{f"{key}_max_s": max(values) for key, values in times[model].items()},
        }
        for model in models
    ]


def _one_round(model: str, uri: str, texts: list[str], headlines: Path, folder: Path) -> dict:
    model_uri = f"models:/bench-{model}-classifier@champion"
    out = folder / f"{model}.csv"
    command = ["predict", "--model-uri", model_uri, "--tracking-uri", uri]
    command += ["--file", str(headlines), "--out", str(out)]
    started = time.perf_counter()
    loaded = load_model(model_uri, uri)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    frame = predict(loaded, texts, top_k=3)
    predict_s = time.perf_counter() - started
    assert len(frame) == len(texts)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        assert newsdesk(command) == 0
    cli_s = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tracker.cli", *command],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    fresh_s = time.perf_counter() - started
    return {"load": load_s, "predict": predict_s, "cli_end_to_end": cli_s, "fresh_process": fresh_s}


def _span(row: dict, key: str) -> str:
    return f"{row[key + '_s']:.2f} s ({row[key + '_max_s']:.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("NEWSDESK_DATA"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--tracking-uri", default=None, help="store for the history part")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--name", default="dashboard")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per model")
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("give --data or set NEWSDESK_DATA to the THUCNews folder")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        uri = args.tracking_uri or f"sqlite:///{folder / 'history' / 'mlflow.db'}"
        history = bench_history(uri, args.steps)
        predictions = bench_predict(Path(args.data).resolve(), folder, args.rounds)
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
        f"Prediction of the {predictions[0]['headlines']:,} THUCNews test headlines, each model "
        f"trained for 20 steps (the cost does not depend on training); minimum (maximum) of "
        f"{predictions[0]['rounds']} rounds, the models interleaved in each. In-process: "
        "what the command costs once Python and the libraries are loaded (the issue's bar, "
        "2 s); fresh process: `python -m tracker.cli predict --file` from the shell.",
        "",
        "| model | model load | predict | `predict --file`, in-process | `predict --file`, "
        "fresh process |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {_span(r, 'load')} | {_span(r, 'predict')} | "
        f"**{_span(r, 'cli_end_to_end')}** | {_span(r, 'fresh_process')} |"
        for r in predictions
    ]
    markdown = "\n".join(lines) + "\n"
    (args.out / f"{args.name}.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
