"""Writes a results page of the docs from a run directory: every number comes from the run's
own outputs, never copied by hand.

Reads ``RUN/metrics.json`` and ``RUN/config.json`` (the population stage), and, when they
exist, ``RUN/device/summary.json`` (on-device personalization through the LiteRT
signatures) and ``RUN/individual/summary.json`` (the Keras individual stage). The tables
are rendered by the library's own renderers (the run's ``report.md`` and ``results.md``).

Commands:

    python -m trainers.pipeline --out runs/demo
    python scripts/docs_results.py runs/demo --out docs/results/demo.md \\
        --title "The demo" --machine "a shared 2-core CPU" \\
        --command "python -m trainers.pipeline --out runs/demo"

An experiments folder (``python -m trainers.experiments ... --out DIR``: its ``index.md``, the
csv and png files) becomes a page the same way: its ``index.md`` under the page's header,
its figures copied beside the page::

    python scripts/docs_results.py runs/demo/ledger --out docs/results/ledger.md \\
        --title "The ledger of deviations" \\
        --command "python -m trainers.experiments pituning_ledger --run runs/demo"
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python scripts/docs_results.py` from a checkout
    sys.path.insert(0, str(ROOT))

from pitune_tf.common.atomic import write_text  # noqa: E402  (after the sys.path lines)
from pitune_tf.common.cli import run_main  # noqa: E402
from pitune_tf.common.run_files import RunFiles  # noqa: E402
from pitune_tf.individual.report import markdown_tables  # noqa: E402
from pitune_tf.population.command_line import metrics_markdown  # noqa: E402

REPRODUCIBILITY = (
    "Float results reproduce on one machine (a fixed seed is deterministic), not across "
    "machines: they differ from the third decimal (e.g. the demo's student test Prec_w "
    "0.4543 on one machine against 0.4586 on another).")
STAGES = (("device", "On-device personalization (LiteRT signatures, `RUN/device/`)"),
          ("individual", "Individual stage, every method (Keras, `RUN/individual/`)"))


def settings_lines(config: dict, metrics: dict) -> list[str]:
    """What the population run was: data, seed, networks, budget, what training kept."""
    data = config.get("data") or []
    source = (", ".join(f"`{Path(p).name}`" for p in data) if data else
              f"the embedded synthetic data (`{config.get('synthetic_preset', 'demo')}` preset)")
    lines = [f"- data: {source}; seed {config.get('seed')}",
             f"- teacher: backbone `{config.get('backbone')}`, IAT {_on(config.get('use_iat'))}, "
             f"reconstruction {_on(config.get('reconstruction'))}, repeat term "
             f"{_on(config.get('repeat_term'))}; student {config.get('student_layers')} x "
             f"{config.get('student_width')}; window length L = {config.get('history')}"]
    windows = metrics.get("windows", {})
    if windows:
        lines.append("- windows: " + ", ".join(f"{k} {v:,}" for k, v in windows.items()))
    for phase, record in metrics.get("training", {}).items():
        lines.append(f"- {phase}: kept epoch {record.get('best_epoch')} of "
                     f"{record.get('epochs')} run (early stopping on {record.get('monitor')})")
    parameters = metrics.get("parameters", {})
    if parameters:
        lines.append("- parameters: " + ", ".join(f"{k} {v:,}" for k, v in parameters.items()))
    if "seconds" in metrics:
        lines.append(f"- population stage: {metrics['seconds']:.0f} s")
    return lines


def _on(flag) -> str:
    return "on" if flag else "off"


def stage_section(summary: dict, title: str) -> list[str]:
    """One individual-stage output directory's tables (those of its ``results.md``)."""
    rows = ", ".join(f"`{m}`" for m in summary.get("methods", {}))
    tables = markdown_tables(summary["methods"], summary.get("device_models", {}),
                             summary["skipped"], summary.get("config"))
    tables = "\n".join("#" + line if line.startswith("## ") else line
                       for line in tables.splitlines())
    return [f"## {title}", "",
            f"{summary.get('users')} users, backend `{summary.get('backend')}`, rows "
            f"{rows}; {summary.get('seconds', 0):.0f} s.", "", tables]


def results_page(run_dir, title="Results", commands=(), machine=None, date=None) -> str:
    """The markdown page of ``run_dir``."""
    run = RunFiles(run_dir, required=("metrics.json", "config.json"),
                   what="run directory")
    run_dir = run.path
    metrics, config = run.json("metrics.json"), run.json("config.json")
    lines = _header(title, run_dir.name, date or _date_of(run_dir / "metrics.json"), machine, commands)
    lines += ["## Settings", "", *settings_lines(config, metrics), "",
              "## Population stage (test windows of the population users)", "",
              metrics_markdown(metrics), ""]
    for name, stage_title in STAGES:
        summary = run.json(f"{name}/summary.json", default=None)
        if summary is not None:
            lines += stage_section(summary, stage_title)
    return "\n".join(lines).rstrip() + "\n"


def _header(title, source, date, machine, commands) -> list[str]:
    where = f" on {machine}" if machine else ""
    lines = [f"# {title}", "",
             f"<!-- generated by scripts/docs_results.py from {source}: do not edit, "
             "run the script again -->", "",
             f"Generated by `scripts/docs_results.py` from `{source}` (finished {date}{where}).", ""]
    if commands:
        lines += ["The commands that produced it:", "", "```bash", *commands, "```", ""]
    return lines + [REPRODUCIBILITY, ""]


def _date_of(path) -> str:
    return datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC).date().isoformat()


def experiments_page(folder, page, title="Results", commands=(), machine=None, date=None) -> str:
    """The markdown page of an experiments folder (its ``index.md``); copies the figures it
    shows into ``page``'s folder as ``<page stem>_<figure>``."""
    index = RunFiles(folder, required=("index.md",), what="experiments folder").path / "index.md"
    body = index.read_text(encoding="utf-8").split("\n", 1)[1]  # below its own title
    for png in sorted(index.parent.glob("*.png")):
        name = f"{Path(page).stem}_{png.name}"
        if f"]({png.name})" in body:
            shutil.copyfile(png, Path(page).parent / name)
            body = body.replace(f"]({png.name})", f"]({name})")
    lines = _header(title, index.parent.name, date or _date_of(index), machine, commands)
    return "\n".join(lines) + "\n" + body.lstrip("\n").rstrip() + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python scripts/docs_results.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory (trainers.pipeline / trainers.population --out), "
                               "or an experiments folder (trainers.experiments --out)")
    p.add_argument("--out", required=True, help="the markdown page to write")
    p.add_argument("--title", default="Results", help="the page's title")
    p.add_argument("--command", action="append", default=[],
                   help="a command that produced the run (repeat for several)")
    p.add_argument("--machine", help="where it ran, e.g. 'a shared 2-core CPU'")
    p.add_argument("--date", help="the run's date (default: metrics.json's modification date)")
    return p


def run(argv=None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if (Path(args.run) / "index.md").is_file() and not (Path(args.run) / "metrics.json").is_file():
        page = experiments_page(args.run, out, args.title, args.command, args.machine, args.date)
    else:
        page = results_page(args.run, args.title, args.command, args.machine, args.date)
    write_text(out, page)
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    return run_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
