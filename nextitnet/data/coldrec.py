"""Reader and writer for the ColdRec / PeterRec CSV layout used by the UAF authors' code.

- pretraining file: one source-domain item sequence per line, ``i1,i2,...``; ``0`` is
  padding and is dropped;
- fine-tuning file: ``src1,...,srcN,,tgt1,tgt2,...`` -- the source sequence, an empty
  field, then the user's target-domain items (each one a fine-tuning instance).

Item ids must be non-negative integers. A malformed line raises :class:`DataError` naming
the file and the line, unless ``skip_bad=True``, which skips it and counts it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from nextitnet.data.cross_domain_data import CrossDomainData
from pitune_tf.common.atomic import atomic_path
from pitune_tf.common.errors import DataError, UserInputError, path_problem

log = logging.getLogger(__name__)
PAD_TOKEN = "0"
_NOT_UTF8 = "\x00not utf-8"  # marks a line that is not UTF-8 text


def _items(fields, path, line_no):
    items = []
    for field in fields:
        token = field.strip()
        if not (token.isascii() and token.isdigit()):  # "²".isdigit() is True
            what = "an empty item id" if token == "" else f"non-integer item id {token!r}"
            raise DataError(f"{what} (expected non-negative integers separated by commas)", path, line_no)
        if token != PAD_TOKEN:
            items.append(str(int(token)))
    return items


def _open_lines(path):
    path = Path(path)
    problem = path_problem(path)
    if problem is not None or not path.is_file():
        raise UserInputError(f"{path}: {problem or 'not a file'}")
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                line = _NOT_UTF8  # the caller raises (or skips, with skip_bad) in its loop
            if line:
                yield line_no, line


def _check_text(line, path, line_no):
    if line == _NOT_UTF8:
        raise DataError("not UTF-8 text", path, line_no)


def read_coldrec(pretrain_path, finetune_path, skip_bad=False):
    """Reads a ColdRec pair of files into :class:`CrossDomainData`.

    Args:
        pretrain_path: path of the source-domain sequences.
        finetune_path: path of the ``source,,targets`` lines.
        skip_bad: bool. Skip malformed lines (counted in ``data.skipped_lines`` and logged)
            instead of raising.
    Returns:
        CrossDomainData (users are named ``line<N>`` after the fine-tuning file's line).
    Raises:
        DataError: a malformed line (file and line number in the message).
    """
    skipped = 0
    pretrain = []
    for line_no, line in _open_lines(pretrain_path):
        try:
            _check_text(line, pretrain_path, line_no)
            items = _items(line.split(","), pretrain_path, line_no)
            if not items:
                raise DataError("sequence has no items", pretrain_path, line_no)
        except DataError:
            if not skip_bad:
                raise
            skipped += 1
            continue
        pretrain.append(items)
    users, source, targets = [], [], []
    for line_no, line in _open_lines(finetune_path):
        try:
            _check_text(line, finetune_path, line_no)
            if ",," not in line:
                raise DataError("missing the empty field ',,' between source and target items", finetune_path, line_no)
            src_text, tgt_text = line.split(",,", 1)
            src = _items(src_text.split(","), finetune_path, line_no) if src_text else []
            if not src:
                raise DataError("empty source sequence", finetune_path, line_no)
            if not tgt_text.strip(", "):
                raise DataError("empty target: no item after ',,'", finetune_path, line_no)
            tgt = _items(tgt_text.split(","), finetune_path, line_no)
            if not tgt:
                raise DataError("empty target: only padding after ',,'", finetune_path, line_no)
        except DataError:
            if not skip_bad:
                raise
            skipped += 1
            continue
        users.append(f"line{line_no}")
        source.append(src)
        targets.append(tgt)
    if not pretrain or not users:
        raise UserInputError(f"no usable lines in {pretrain_path if not pretrain else finetune_path}")
    if skipped:
        log.warning("skipped %d malformed ColdRec lines", skipped)
    return CrossDomainData(
        pretrain, users, source, targets, name=f"coldrec:{Path(finetune_path).name}", skipped_lines=skipped
    )


def write_coldrec(data: CrossDomainData, pretrain_path, finetune_path) -> None:
    """Writes ``data`` in the ColdRec layout (atomically). Users without targets are left out
    of the fine-tuning file. Item tokens must be integers."""
    for seq in list(data.pretrain) + list(data.source) + list(data.targets):
        for token in seq:
            if not str(token).isdigit() or str(token) == PAD_TOKEN:
                raise UserInputError(f"ColdRec needs positive integer item ids, got {token!r}")
    with atomic_path(pretrain_path) as tmp:
        Path(tmp).write_text("".join(",".join(seq) + "\n" for seq in data.pretrain), encoding="utf-8")
    lines = [
        ",".join(src) + ",," + ",".join(tgt) + "\n" for src, tgt in zip(data.source, data.targets) if tgt
    ]
    with atomic_path(finetune_path) as tmp:
        Path(tmp).write_text("".join(lines), encoding="utf-8")
