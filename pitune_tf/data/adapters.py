"""Real-data adapters: public log formats to the canonical event table.

* Tsinghua App Usage (``data_sample.csv``: ``user_id, time, location, app_id,
  app_cate_id, ...``; ``time`` as ``YYYYMMDDhhmmss``): event = app, intent = app category
  (its English name from ``category.csv`` when given, else the category id), location =
  base station.
* Foursquare check-ins as trajectories (``traj-TKY.csv``: ``userID, trajID, poiID,
  startTime, ...``, unix seconds; ``poi-TKY.csv``: ``poiID, poiCat, poiLon, poiLat``):
  event = the POI's category (as the PITuning paper's Mobile dataset, whose 12 event types
  are its 12 intents: "the location category as the activity and intent type", Sec. 4.1.1
  and Table 1) or the POI itself, intent = POI category, location = the POI or a lat/lon
  grid cell.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pitune_tf.common.errors import DataError, UserInputError
from pitune_tf.data.cells import check_tokens
from pitune_tf.data.io import apply_mapping, canonicalize, read_events, read_table
from pitune_tf.data.schema import ReadStats, Schema
from pitune_tf.data.timestamps import check_timezone, parse_timestamps

FORMATS = ("canonical", "tsinghua", "foursquare")
FOURSQUARE_EVENTS = ("category", "poi")


def read_tsinghua(data_path, category_path=None, merge_gap_s: float | None = None,
                  unmapped: str = "error", stats: ReadStats | None = None) -> pd.DataFrame:
    """Reads the Tsinghua App Usage log into the canonical event table.

    The log holds traffic records, often one per second of use of the same app (84% of the
    sample's records repeat the previous app of their user); ``merge_gap_s`` collapses them.

    Args:
        data_path: the usage log (``data_sample.csv``).
        category_path: optional ``category.csv`` (``app_type_id, en, ...``) naming the
            categories; without it the intent is the category id.
        merge_gap_s: float or None. When given, a record of the same user, app and
            location as the user's previous record at most this many seconds later is
            dropped (a session becomes its first record). None keeps every record.
        unmapped: str. A category missing from ``category.csv``: ``error``, ``drop`` (the
            row) or ``other`` (intent ``"other"``).
        stats: ReadStats or None; counts what was done.
    """
    data_path = Path(data_path)
    raw = _tokens(read_table(data_path, columns=["user_id", "time", "location", "app_id",
                                                 "app_cate_id"]), data_path, "time")
    category = raw["app_cate_id"]
    if category_path is not None:
        names = _tokens(read_table(category_path, columns=["app_type_id", "en"]), category_path)
        mapping = dict(zip(names["app_type_id"].str.strip(), names["en"].str.strip(), strict=True))
        try:
            intent = apply_mapping(category.str.strip(), mapping, data_path, category_path,
                                   unmapped, stats)
        except DataError as err:
            raise DataError(
                f"app category {category.iloc[err.row - 1]!r} not in {category_path}",
                data_path,
                err.row,
                "app_cate_id",
            ) from None
    else:
        intent = category
    table = pd.DataFrame(
        {
            "user_id": raw["user_id"],
            "timestamp": raw["time"],
            "event": raw["app_id"],
            "intent": intent,
            "location": raw["location"],
        }
    )
    if stats is not None:
        stats.rows_read += len(table)
    table = table[table["intent"].notna().to_numpy()]
    if len(table) == 0:
        raise DataError(f"no record left: no app category is in {category_path}", data_path)
    return _canonical(table, data_path, {"timestamp": "time", "event": "app_id"}, stats,
                      merge_gap_s)


def read_foursquare(
    traj_path, poi_path, cell_size: float | None = None, timezone: str = "Asia/Tokyo",
    stats: ReadStats | None = None, merge_gap_s: float | None = None, event: str = "category",
) -> pd.DataFrame:
    """Reads Foursquare trajectories and POIs into the canonical event table.

    Args:
        traj_path: check-ins (``traj-TKY.csv``: ``userID, poiID, startTime``).
        poi_path: POIs (``poi-TKY.csv``: ``poiID, poiCat, poiLon, poiLat``).
        cell_size: float or None. None: location = the POI; else location = the grid cell
            ``"{row}_{col}"`` of ``floor(lat / cell_size), floor(lon / cell_size)`` (degrees).
        timezone: str. Zone of the local time the unix ``startTime`` is shown in (naive).
        stats: ReadStats or None; counts what was done.
        merge_gap_s: float or None. As in :func:`read_tsinghua`.
        event: ``"category"`` (default): event = the POI's category, as the paper's Mobile
            dataset (``merge_gap_s`` then merges a user's consecutive check-ins of one
            category); ``"poi"``: event = the POI (thousands of event ids, most seen a few
            times: on the TKY sample this overfits, see docs/measurements.md, "The two real
            samples").
    """
    if event not in FOURSQUARE_EVENTS:
        raise UserInputError(f"unknown foursquare event {event!r} "
                             f"(choose from {', '.join(FOURSQUARE_EVENTS)})")
    traj_path, poi_path = Path(traj_path), Path(poi_path)
    if cell_size is not None and not cell_size > 0:
        raise UserInputError(f"cell size must be > 0 degrees, got {cell_size}")
    traj = _tokens(read_table(traj_path, columns=["userID", "poiID", "startTime"]), traj_path,
                   "startTime")
    pois = _tokens(read_table(poi_path, columns=["poiID", "poiCat", "poiLon", "poiLat"]),
                   poi_path, "poiLon", "poiLat")
    pois["poiID"] = pois["poiID"].str.strip()
    duplicated = pois["poiID"].duplicated().to_numpy()
    if duplicated.any():
        at = int(np.flatnonzero(duplicated)[0])
        raise DataError(f"duplicate POI {pois['poiID'].iloc[at]!r}", poi_path, at + 1, "poiID")
    pois = pois.set_index("poiID")
    poi = traj["poiID"].str.strip()
    unknown = ~poi.isin(pois.index).to_numpy()
    if unknown.any():
        at = int(np.flatnonzero(unknown)[0])
        raise DataError(f"POI {poi.iloc[at]!r} not in {poi_path}", traj_path, at + 1, "poiID")
    if cell_size is None:
        location = poi
    else:
        coords = {}
        for column in ("poiLat", "poiLon"):
            values = pd.to_numeric(pois[column], errors="coerce")
            bad = values.isna().to_numpy()
            if bad.any():
                at = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"not a number: {pois[column].iloc[at]!r}", poi_path, at + 1, column
                )
            coords[column] = np.floor(values.to_numpy() / cell_size).astype(np.int64)
        cell = pd.Series(
            [f"{r}_{c}" for r, c in zip(coords["poiLat"], coords["poiLon"], strict=True)],
            index=pois.index,
        )
        location = poi.map(cell)
    check_timezone(timezone)
    local = parse_timestamps(traj["startTime"], traj_path, "startTime", time_unit="s",
                             timezone=timezone)
    if stats is not None:
        stats.rows_read += len(traj)
        stats.time_unit = "s"
    category = poi.map(pois["poiCat"])
    table = pd.DataFrame(
        {
            "user_id": traj["userID"].str.strip(),
            "timestamp": local,
            "event": category if event == "category" else poi,
            "intent": category,
            "location": location,
        }
    )
    return _canonical(table, traj_path, {"timestamp": "startTime", "event": "poiID"}, stats,
                      merge_gap_s)


def _tokens(table: pd.DataFrame, path: Path, *other) -> pd.DataFrame:
    """``table`` with every column but ``other`` checked as ids or names
    (:func:`~pitune_tf.data.cells.check_tokens`: a list, a boolean, an empty value... is a
    located error)."""
    for column in table.columns:
        if column not in other:
            table[column] = check_tokens(table[column], path, column)
    return table


def _canonical(table: pd.DataFrame, path: Path, columns: dict, stats=None,
               merge_gap_s=None) -> pd.DataFrame:
    """canonicalize() (repeats merged within ``merge_gap_s``), with errors naming the source
    file's column names; ``stats`` gets all but the rows read (the caller counts them)."""
    scratch = ReadStats()
    try:
        df = canonicalize(table, path, schema=Schema(merge_gap_s=merge_gap_s), stats=scratch)
        if stats is not None:
            stats.time_unit = stats.time_unit or scratch.time_unit
            stats.repeats_merged += scratch.repeats_merged
            stats.hints += [h for h in scratch.hints if h not in stats.hints]
        return df
    except DataError as err:
        if err.column in columns:
            raise DataError(err.message, err.path, err.row, columns[err.column]) from None
        raise


def read_any(
    inputs,
    format: str = "canonical",
    mapping=None,
    cell_size=None,
    schema: Schema | None = None,
    stats: ReadStats | None = None,
    foursquare_event: str = "category",
) -> pd.DataFrame:
    """Reads ``inputs`` (a list of paths) in one of :data:`FORMATS`.

    ``canonical``: one event file (+ ``mapping``); ``tsinghua``: the log and optionally
    ``category.csv``; ``foursquare``: the trajectories and the POI file.

    Args:
        schema: :class:`~pitune_tf.data.schema.Schema` or None. ``columns`` and
            ``time_unit`` apply to the canonical format only (the adapters know their
            columns); ``timezone`` to the canonical and foursquare formats (default
            Asia/Tokyo there); ``unmapped`` to the mapping (tsinghua: ``category.csv``);
            ``merge_gap_s`` to every format.
        stats: :class:`~pitune_tf.data.schema.ReadStats` or None; counts what was done and
            gets hints when a default looks wrong for the data (many repeated records).
        foursquare_event: ``event`` of :func:`read_foursquare`.
    """
    schema = schema or Schema()
    stats = stats if stats is not None else ReadStats()
    inputs = [Path(p) for p in inputs]
    expected = {"canonical": (1, 1), "tsinghua": (1, 2), "foursquare": (2, 2)}
    if format not in expected:
        raise UserInputError(f"unknown format {format!r} (choose from {', '.join(FORMATS)})")
    low, high = expected[format]
    if not low <= len(inputs) <= high:
        usage = {
            "canonical": "EVENTS",
            "tsinghua": "DATA.csv [category.csv]",
            "foursquare": "traj.csv poi.csv",
        }[format]
        raise UserInputError(f"format {format} takes {usage}, got {len(inputs)} file(s)")
    if format != "canonical" and (schema.columns or schema.time_unit != "auto"):
        raise UserInputError(f"--columns and --time-unit apply to --format canonical; the "
                             f"{format} adapter knows its columns and time format")
    if format == "canonical":
        df = read_events(inputs[0], mapping=mapping, schema=schema, stats=stats)
    elif format == "tsinghua":
        df = read_tsinghua(inputs[0], inputs[1] if len(inputs) > 1 else None,
                           schema.merge_gap_s, schema.unmapped, stats)
    else:
        df = read_foursquare(inputs[0], inputs[1], cell_size=cell_size,
                             timezone=schema.timezone or "Asia/Tokyo", stats=stats,
                             merge_gap_s=schema.merge_gap_s, event=foursquare_event)
    return df
