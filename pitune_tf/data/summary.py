"""Dataset summaries: sizes, time span, population vs individual intent distributions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pitune_tf.common.atomic import write_json
from pitune_tf.common.plotting import pyplot, save_png


def _describe(df: pd.DataFrame) -> dict:
    per_user = df.groupby("user_id", sort=False).size()
    start, end = df["timestamp"].min(), df["timestamp"].max()
    return {
        "users": int(df["user_id"].nunique()),
        "events": int(len(df)),
        "distinct_events": int(df["event"].nunique()),
        "intents": int(df["intent"].nunique()),
        "locations": int(df["location"].nunique()),
        "start": str(start),
        "end": str(end),
        "days": round((end - start) / pd.Timedelta(days=1), 3),
        "events_per_user": {
            "min": int(per_user.min()),
            "median": float(per_user.median()),
            "max": int(per_user.max()),
        },
    }


def summarize_events(population: pd.DataFrame, individual: pd.DataFrame) -> dict:
    """Summary of a population and an individual event table (canonical, disjoint users).

    Returns a JSON-ready dict: ``all``, ``population`` and ``individual`` descriptions
    (users, events, intents, time span, ...) and ``intent_share``: per intent, its share of
    the population's events and of the individual users' events, sorted by population share.
    """
    both = pd.concat([population, individual], ignore_index=True)
    pop_share = population["intent"].value_counts(normalize=True)
    ind_share = individual["intent"].value_counts(normalize=True)
    intents = sorted(
        set(pop_share.index) | set(ind_share.index), key=lambda i: (-pop_share.get(i, 0.0), str(i))
    )
    return {
        "all": _describe(both),
        "population": _describe(population),
        "individual": _describe(individual),
        "intent_share": [
            {
                "intent": str(i),
                "population": round(float(pop_share.get(i, 0.0)), 6),
                "individual": round(float(ind_share.get(i, 0.0)), 6),
            }
            for i in intents
        ],
    }


def format_summary(summary: dict, max_intents: int = 30) -> str:
    """The summary as a plain-text table."""
    lines = []
    header = f"{'':12}{'users':>8}{'events':>11}{'intents':>9}  time span"
    lines.append(header)
    for part in ("all", "population", "individual"):
        d = summary[part]
        lines.append(
            f"{part:12}{d['users']:>8}{d['events']:>11}{d['intents']:>9}  "
            f"{d['start']} .. {d['end']} ({d['days']:.1f} days)"
        )
    lines.append("")
    width = max([len("intent")] + [len(r["intent"]) for r in summary["intent_share"][:max_intents]])
    width = min(width, 40)
    lines.append(f"{'intent':<{width}}  {'population':>10}  {'individual':>10}")
    for row in summary["intent_share"][:max_intents]:
        lines.append(
            f"{row['intent'][:width]:<{width}}  {row['population']:>10.2%}  {row['individual']:>10.2%}"
        )
    hidden = len(summary["intent_share"]) - max_intents
    if hidden > 0:
        lines.append(f"... {hidden} more intents in summary.json")
    return "\n".join(lines)


def plot_intent_share(summary: dict, path, max_intents: int = 30) -> Path:
    """Saves a bar chart of population vs individual intent shares as PNG (atomically)."""
    plt = pyplot()
    rows = summary["intent_share"][:max_intents]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(rows) + 2), 4.5))
    ax.bar(x - 0.2, [r["population"] for r in rows], width=0.4, label="population")
    ax.bar(x + 0.2, [r["individual"] for r in rows], width=0.4, label="individual users")
    ax.set_xticks(x, [r["intent"][:20] for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("share of events")
    pop, ind = summary["population"], summary["individual"]
    ax.set_title(
        f"Intent distribution: population ({pop['users']} users) vs individual ({ind['users']} users)"
    )
    ax.legend()
    fig.tight_layout()
    return save_png(fig, path)


def save_summary(summary: dict, directory) -> tuple[Path, Path]:
    """Writes ``summary.json`` and ``intents.png`` in ``directory`` (each atomically)."""
    directory = Path(directory)
    png = plot_intent_share(summary, directory / "intents.png")
    json_path = directory / "summary.json"
    write_json(json_path, summary)
    return json_path, png
