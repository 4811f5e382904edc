"""What the per-validation record (`trainers.evaluation_log`) adds to a validation's time, on
THUCNews's 10,000 dev headlines (issue 36 asks for < 5 %).

For each model, `--rounds` interleaved rounds: time the validation as the loop does it
(FastText's softmax temperature fitted on dev, then `evaluate` on dev), then the record
(confusion matrix, the most confident mistakes) and its `log_dict` through a real
`TrainingLogger` on a temporary SQLite store (what the loop now adds).

    python benchmarks/evaluation_record.py --data DIR [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracker import TrainingLogger, WriterConfig  # noqa: E402
from trainers.data import DataConfig, prepare_data  # noqa: E402
from trainers.evaluate import evaluate  # noqa: E402
from trainers.evaluation_log import evaluation_file, evaluation_record  # noqa: E402
from trainers.models.init import init_weights  # noqa: E402
from trainers.models.registry import build_model, make_config  # noqa: E402

MODELS = ("fasttext", "textcnn", "lstm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("NEWSDESK_DATA"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if args.data is None:
        parser.error("--data (or NEWSDESK_DATA) names the THUCNews folder")
    torch.set_num_threads(1)
    data = prepare_data(DataConfig(data=args.data))
    dev, corpus = data.splits["dev"], data.corpus
    models = {}
    for name in MODELS:
        torch.manual_seed(0)
        model = build_model(name, make_config(name, {}), len(data.vocab), data.num_classes)
        init_weights(model)
        models[name] = model
    times: dict[str, dict[str, list[float]]] = {m: {"evaluate": [], "record": []} for m in MODELS}
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        with TrainingLogger("bench", tracking_uri=uri, writer_config=WriterConfig()) as log:
            for round_ in range(args.rounds):
                for name, model in models.items():
                    started = time.perf_counter()
                    calibrate = getattr(model, "calibrate", None)
                    if calibrate is not None:  # as `trainers.loop` does before validating
                        calibrate(dev.ids, dev.labels, 1024, torch.device("cpu"))
                    ev = evaluate(model, dev, 1024, torch.device("cpu"))
                    times[name]["evaluate"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    record = evaluation_record(round_, ev, corpus.dev.texts, corpus.label_names)
                    log.log_dict(record, evaluation_file(round_ * 10 + MODELS.index(name)))
                    times[name]["record"].append(time.perf_counter() - started)
    rows = {
        name: {
            "evaluate_s": [round(min(t["evaluate"]), 4), round(max(t["evaluate"]), 4)],
            "record_s": [round(min(t["record"]), 4), round(max(t["record"]), 4)],
            "added_pct": round(100 * min(t["record"]) / min(t["evaluate"]), 2),
        }
        for name, t in times.items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evaluation_record.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "# The per-validation record's cost, THUCNews dev (10,000 headlines), 1 thread",
        "",
        f"`python benchmarks/evaluation_record.py`, {args.rounds} interleaved rounds, "
        "minimum (maximum) seconds.",
        "",
        "| model | validation on dev | record + log_dict | added |",
        "|---|---|---|---|",
    ]
    for name, row in rows.items():
        e, r = row["evaluate_s"], row["record_s"]
        lines.append(f"| {name} | {e[0]} ({e[1]}) | {r[0]} ({r[1]}) | {row['added_pct']} % |")
    (args.out / "evaluation_record.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
