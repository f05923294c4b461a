"""The streaming student (``--student-span``) against the default student: quality on the
population's test windows, and the cost of a prediction (``infer_step`` vs ``infer``).

Per seed: a population run of ``--preset`` (resumed when its folder under ``--out`` is
finished), whose teacher then distills one more student per span of ``--spans`` with the run's
own data, settings and seed (only ``student_span`` differs). Every student is scored on the
same test windows; the differences to the run's default student are pooled over the seeds
with a paired bootstrap over users (``seed:user`` groups), beside the trivial baselines
(most frequent intent, the last event's intent). FLOPs: matmul FLOPs of ``infer`` on one
window and of one ``infer_step`` (``pitune_tf.models.train_parts``), for the run's students
and for the paper-size student (4 x 768, L = 30) at ``--paper-span``.

Prints one JSON line. About 4 minutes per seed on the development machine (2 cores) for the
demo preset with two spans, more for the first run of a seed (the population run itself).
Measured (3 seeds; the demo preset's student does not stream, ``auto`` is span 14 there):
demo data, span 14 Prec_w +0.014 [+0.011, +0.017], Rec_m +0.017 [+0.013, +0.020], span 7
Prec_w -0.019 [-0.022, -0.016]; Foursquare TKY, span 14 Prec_w -0.007 [-0.042, +0.015],
Rec_m -0.014 [-0.025, -0.002], span 7 +0.002 / +0.002 (ties).

    python bench/streaming_student.py --out /tmp/stream --seeds 0,1,2 --spans 7,auto
    python bench/streaming_student.py --out /tmp/tky --data tky.parquet --spans 7,auto
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

METRICS = ("acc", "prec_w", "rec_m", "ndcg@3")


def seed_scores(preset_name, seed, out, spans, data=None) -> dict:
    """Test labels, users and each student's / baseline's scores of one seed."""
    from pitune_tf.layers.repeat_mixture import repeat_logits
    from pitune_tf.population import preset, run_population
    from pitune_tf.population.data_preparation import load_data, prepare_windows
    from pitune_tf.population.distillation import distill_student
    from pitune_tf.population.evaluation import baseline_scores, predict_logits
    from pitune_tf.population.run_directory import load_run

    config = preset(preset_name).replace(seed=seed, **({"data": [data]} if data else {}))
    run_dir = Path(out) / f"seed{seed}"
    if not (run_dir / "metrics.json").is_file():
        run_population(config, run_dir)
    run = load_run(run_dir)
    population, _ = load_data(config)
    vocabs, (train, val, test), event_intent = prepare_windows(config, population)
    repeat_init = repeat_logits(train.label, event_intent[train.event[:, -1]], vocabs.n_intents)
    batch = 4 * config.batch_size
    scores = {"default": predict_logits(run.student, test, batch)}
    p_pop = np.bincount(train.label, minlength=vocabs.n_intents) / len(train)
    scores.update(baseline_scores(test, p_pop, event_intent))
    students = {}
    for span in spans:
        with tempfile.TemporaryDirectory(prefix="stream_") as tmp:
            student = distill_student(config.replace(student_span=span), vocabs, run.teacher,
                                      train, val, Path(tmp), event_intent, repeat_init)
        scores[f"span{span}"] = predict_logits(student, test, batch)
        students[span] = student
    return {"labels": test.label, "users": np.array([f"{seed}:{u}" for u in test.user]),
            "scores": scores, "students": students, "default_student": run.student,
            "history": config.history}


def flops(student, history) -> dict:
    from pitune_tf.models.train_parts import forward_graph, matmul_flops, step_graph

    out = {"infer": sum(matmul_flops(forward_graph(student, history)).values())}
    if getattr(student, "streaming", False):
        out["infer_step"] = sum(matmul_flops(step_graph(student)).values())
        out["ratio"] = round(out["infer"] / out["infer_step"], 2)
    return out


def paper_flops(span) -> dict:
    from pitune_tf.models import build_student
    from pitune_tf.population import preset

    sizes = {"location": 93, "weekday": 8, "slot": 25, "event": 91, "intent": 18}
    config = preset("paper").replace(history=30, student_span=span)
    return {"span": span, **flops(build_student(config, sizes), 30)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--spans", default="auto",
                        help="student_span of each extra student: numbers, auto or none")
    parser.add_argument("--paper-span", default="auto", help="the paper-size student's span")
    parser.add_argument("--data", help="an events file (default: the preset's synthetic data)")
    parser.add_argument("--out", required=True, help="folder of the population runs (reused)")
    args = parser.parse_args(argv)
    from pitune_tf.metrics import intent_metrics, paired_bootstrap

    seeds = [int(s) for s in args.seeds.split(",")]
    spans = [int(s) if s.isdigit() else s for s in args.spans.split(",")]
    start, load = time.time(), os.getloadavg()[0]
    runs = [seed_scores(args.preset, seed, args.out, spans, args.data) for seed in seeds]
    labels = np.concatenate([r["labels"] for r in runs])
    users = np.concatenate([r["users"] for r in runs])
    result = {"bench": "streaming_student", "preset": args.preset, "data": args.data, "seeds": seeds,
              "test_windows": len(labels), "users": len(np.unique(users)), "models": {}}
    for name in runs[0]["scores"]:
        scores = np.concatenate([r["scores"][name] for r in runs])
        row = {m: round(float(v), 4) for m, v in intent_metrics(labels, scores).items()
               if m in METRICS}
        per_seed = [intent_metrics(r["labels"], r["scores"][name]) for r in runs]
        row["prec_w_per_seed"] = [round(float(m["prec_w"]), 4) for m in per_seed]
        if name != "default":
            base = np.concatenate([r["scores"]["default"] for r in runs])
            diff = paired_bootstrap(labels, scores, base, groups=users)
            row["vs_default"] = {m: [round(diff[m][k], 4) for k in ("diff", "low", "high")]
                                 for m in METRICS}
        result["models"][name] = row
    result["flops"] = {"default": flops(runs[0]["default_student"], runs[0]["history"]),
                       **{f"span{s}": flops(st, runs[0]["history"])
                          for s, st in runs[0]["students"].items()},
                       "paper": paper_flops(int(args.paper_span) if args.paper_span.isdigit()
                                            else args.paper_span)}
    result.update(seconds=round(time.time() - start), load_start=round(load, 2),
                  load_end=round(os.getloadavg()[0], 2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
