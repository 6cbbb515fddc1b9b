#!/usr/bin/env python3
"""Extracts every number the seed notebook printed into notebook_numbers.json.

Usage (from anywhere; Python 3.8+, standard library only):

    python3 reference/extract_notebook_numbers.py            # rewrite reference/notebook_numbers.json
    python3 reference/extract_notebook_numbers.py --check    # exit 1 if the committed file is stale
    python3 reference/extract_notebook_numbers.py --notebook PATH --out PATH

The notebook text defaults to ../shared/seed/notebook.txt next to the workspace root.
The output is a pure function of the notebook text (no timestamps, fixed key order), so
re-running it on the same notebook reproduces the file byte for byte. See README.md for
the format. The script fails loudly on any output line it does not understand rather
than skipping it: every printed number must land in the file.
"""

import argparse
import ast
import hashlib
import json
import os
import re
import sys

SCHEMA_VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_NOTEBOOK = os.path.join(HERE, "..", "..", "shared", "seed", "notebook.txt")
DEFAULT_OUT = os.path.join(HERE, "notebook_numbers.json")

CELL_RE = re.compile(r"^In \[(\d+)\]:$")
LOSS_RE = re.compile(r"^loss  (\S+)$")
ACC_RE = re.compile(r"^validation accuracy (\S+)$")
GRAD_RE = re.compile(r"^ (analytic gradient|numerical gradient|difference):  (\S+)$")
LOSS_LABEL, ACC_LABEL = "loss  ", "validation accuracy "


class NotebookError(Exception):
    pass


def number(text):
    """A printed number: the exact text and its float value (Python parses correctly rounded)."""
    return {"text": text, "value": float(text)}


def significant_digits(text):
    mantissa = text.lower().split("e")[0].lstrip("-").replace(".", "").lstrip("0")
    return len(mantissa)


def split_cells(lines):
    """[(label, first line number (1-based), [(line number, text), ...])] per `In [n]:` cell."""
    cells = []
    for no, line in enumerate(lines, 1):
        m = CELL_RE.match(line)
        if m:
            cells.append({"label": "In [%s]" % m.group(1), "line": no, "body": []})
        elif cells:
            cells[-1]["body"].append((no, line))
    return cells


def find_cell(cells, predicate, what):
    found = [c for c in cells if predicate("\n".join(t for _, t in c["body"]))]
    if len(found) != 1:
        raise NotebookError("expected one cell %s, found %d" % (what, len(found)))
    return found[0]


def cell_units_and_hparams(code):
    m = re.search(r'NN\((\[[^\]]*\]),\s*"(\w+)",\s*lr=([0-9.e-]+),\s*batch_size=(\d+),\s*initialization="(\w+)"\)', code)
    if not m:
        raise NotebookError("cannot parse the NN(...) call in:\n" + code)
    return {
        "units": ast.literal_eval(m.group(1)),
        "activation": m.group(2),
        "learning_rate": float(m.group(3)),
        "batch_size": int(m.group(4)),
        "initialization": m.group(5),
    }


def training_lines(cell):
    """Loss/accuracy lines of a complete training output: [(line, what, number)]."""
    out = []
    for no, text in cell["body"]:
        for what, rx in (("loss", LOSS_RE), ("val_accuracy", ACC_RE)):
            m = rx.match(text)
            if m:
                out.append((no, what, number(m.group(1))))
    return out


def part1(cells):
    runs = []
    for init in ("glorot", "normal", "zero"):
        cell = find_cell(cells, lambda code: 'initialization="%s")\n' % init in code
                         and "train(" in code and "for i in range" not in code,
                         "training a %s network" % init)
        config = cell_units_and_hparams("\n".join(t for _, t in cell["body"]))
        lines = training_lines(cell)
        if [w for _, w, _ in lines] != ["loss", "val_accuracy"] * 10:
            raise NotebookError("%s: expected 10 (loss, accuracy) pairs" % cell["label"])
        epochs = []
        for e in range(10):
            (l_no, _, loss), (a_no, _, acc) = lines[2 * e], lines[2 * e + 1]
            epochs.append({"epoch": e + 1, "loss": dict(loss, line=l_no), "val_accuracy": dict(acc, line=a_no)})
        runs.append({"run": init, "cell": cell["label"], "cell_line": cell["line"], "config": config, "epochs": epochs})
    return {"runs": runs}


def parameter_count(cells, units):
    cell = find_cell(cells, lambda code: code.strip().startswith("myNet.num_parameters()"), "calling num_parameters")
    hits = [(no, t) for no, t in cell["body"] if t.startswith("we have")]
    if len(hits) != 1:
        raise NotebookError("expected one 'we have ... million parameters' line")
    no, text = hits[0]
    m = re.match(r"^we have  (\S+)  million parameters$", text)
    if not m:
        raise NotebookError("cannot parse %r" % text)
    pairs = list(zip(units[:-1], units[1:]))
    notebook_count = sum(a + a * b for a, b in pairs)
    correct_count = sum(b + a * b for a, b in pairs)
    if repr(notebook_count / 1000000) != m.group(1):
        raise NotebookError("num_parameters formula does not reproduce the printed %s" % m.group(1))
    return {
        "cell": cell["label"], "line": no, "printed": text, "value_millions": number(m.group(1)),
        "units": units, "notebook_count": notebook_count, "correct_count": correct_count,
        "bug": "num_parameters() adds network_units[i] (each layer's fan_in) as the bias count; "
               "the biases have network_units[i+1] (fan_out) entries, so the real count is %d, "
               "not %d. The Part 1 markdown repeats the wrong 0.648784 million." % (correct_count, notebook_count),
    }


def grid_spec(code):
    def literal(name):
        m = re.search(r"^%s = (\[.*\])\s*$" % name, code, re.M)
        if not m:
            raise NotebookError("cannot find %s in the grid cell" % name)
        return ast.literal_eval(m.group(1))
    loops = re.findall(r"for (\w) in range\(len\((\w+)\)\)", code)
    order = [name for _, name in loops]
    if order != ["architecture", "non_linearity", "learning_rate", "mini_batch_size"]:
        raise NotebookError("unexpected grid loop order %s" % order)
    m = re.search(r"\.train\(training_inputs, training_results, (\d+),", code)
    spec = {
        "loop_order": ["hidden", "activation", "learning_rate", "batch_size"],
        "hidden": literal("architecture"),
        "activation": literal("non_linearity"),
        "learning_rate": literal("learning_rate"),
        "batch_size": literal("mini_batch_size"),
        "epochs": int(m.group(1)),
        "initialization": "glorot",
    }
    spec["trials"] = len(spec["hidden"]) * len(spec["activation"]) * len(spec["learning_rate"]) * len(spec["batch_size"])
    spec["lines_per_trial"] = 2 * spec["epochs"]
    spec["stream_lines"] = spec["trials"] * spec["lines_per_trial"]
    return spec


def trial_config(spec, trial):
    n_a, n_l, n_b = len(spec["activation"]), len(spec["learning_rate"]), len(spec["batch_size"])
    return {
        "hidden": spec["hidden"][trial // (n_a * n_l * n_b)],
        "activation": spec["activation"][trial // (n_l * n_b) % n_a],
        "learning_rate": spec["learning_rate"][trial // n_b % n_l],
        "batch_size": spec["batch_size"][trial % n_b],
    }


def grid_line(no, text, last_before_gap):
    """One printed grid line. `match` says how a replayed line compares with it."""
    for what, rx, label in (("loss", LOSS_RE, LOSS_LABEL), ("val_accuracy", ACC_RE, ACC_LABEL)):
        m = rx.match(text)
        if m:
            entry = {"line": no, "what": what}
            entry.update(number(m.group(1)))
            t = m.group(1)
            # A number cut by the export can only be the last line before a gap. It is still
            # provably whole if it cannot be longer: 17 significant digits (the most a
            # shortest-repr float64 has) or an accuracy's two decimals (count / 100).
            whole = (significant_digits(t) >= 17) if what == "loss" else ("." in t and len(t.split(".")[1]) == 2)
            entry["match"] = "prefix" if last_before_gap and not whole else "exact"
            return entry
        if last_before_gap and text and label.startswith(text) and text != label:
            return {"line": no, "what": what, "text": None, "value": None, "match": "none", "printed": text}
    raise NotebookError("line %d: unexpected grid output %r" % (no, text))


def part2(cells):
    cell = find_cell(cells, lambda code: "for i in range(len(architecture))" in code, "running the grid")
    code = "\n".join(t for _, t in cell["body"])
    spec = grid_spec(code)
    body = cell["body"]
    # Output starts at the first printed loss; the closing "achieved best accuracy" block ends it.
    start = next(i for i, (_, t) in enumerate(body) if LOSS_RE.match(t))
    end = next(i for i in range(start, len(body)) if "achieved best accuracy" in body[i][1])
    # Blank lines never appear in the cell's own output (one print per line, no empty
    # prints), so each blank run marks a place where the export dropped output.
    fragments, current = [], []
    for no, text in body[start:end]:
        if text.strip() == "":
            if current:
                fragments.append((current, True))
                current = []
        else:
            current.append((no, text))
    if current:  # runs straight into the summary block: nothing dropped after it
        fragments.append((current, False))
    out = []
    for f_index, (frag, followed_by_gap) in enumerate(fragments):
        lines = [grid_line(no, t, followed_by_gap and k == len(frag) - 1) for k, (no, t) in enumerate(frag)]
        for a, b in zip(lines, lines[1:]):
            if a["what"] == b["what"]:
                raise NotebookError("line %d: two %s lines in a row" % (b["line"], b["what"]))
        fragment = {"fragment": f_index, "first_line": frag[0][0], "last_line": frag[-1][0],
                    "followed_by_gap": followed_by_gap, "stream_offset": None, "lines": lines}
        if f_index == 0:
            # The cell's output starts at the top of the stream: trial 0, epoch 1, loss.
            if lines[0]["what"] != "loss" or body[start - 1][1].strip() != "" or start == 0:
                raise NotebookError("the grid output does not start with trial 0's first loss")
            fragment["stream_offset"] = 0
        if fragment["stream_offset"] is not None:
            for k, line in enumerate(lines):
                pos = fragment["stream_offset"] + k
                line["trial"] = pos // spec["lines_per_trial"]
                line["epoch"] = pos % spec["lines_per_trial"] // 2 + 1
        out.append(fragment)

    block = body[end:end + 5]
    m = re.match(r"^We achieved best accuracy of  (\S+) with the following hyperparameters:<br>$", block[0][1])
    fields = [re.match(r"^\s+(\S+)\s+-->\s+(.*?)<br>$", t) for _, t in block[1:]]
    if not m or not all(fields):
        raise NotebookError("cannot parse the best-accuracy block at line %d" % block[0][0])
    hidden, activation, lr, batch = (f.group(1) for f in fields)
    best = {
        "line": block[0][0], "lines": [no for no, _ in block], "printed": [t for _, t in block],
        "val_accuracy": number(m.group(1)), "hidden": int(hidden), "activation": activation,
        "learning_rate": number(lr), "batch_size": int(batch),
        "note": "The block's form differs from what the cell's print() call writes (capital W, <br> "
                "tags, different spacing), so it was reformatted after the run; its numbers are the "
                "final-epoch validation accuracy of the best trial and that trial's hyperparameters.",
    }
    best["trial"] = next(t for t in range(spec["trials"]) if trial_config(spec, t) == {
        "hidden": best["hidden"], "activation": best["activation"],
        "learning_rate": best["learning_rate"]["value"], "batch_size": best["batch_size"]})
    return {"cell": cell["label"], "cell_line": cell["line"], "spec": spec,
            "trial_configs": [dict(trial=t, **trial_config(spec, t)) for t in range(spec["trials"])],
            "fragments": out, "best": best}


def part3(cells):
    out = []
    grad_cells = [c for c in cells if ".grad_check(" in "\n".join(t for _, t in c["body"])
                  and "def grad_check" not in "\n".join(t for _, t in c["body"])]
    if len(grad_cells) != 3:
        raise NotebookError("expected three grad_check cells, found %d" % len(grad_cells))
    for cell in grad_cells:
        code = "\n".join(t for _, t in cell["body"])
        config = cell_units_and_hparams(code)
        m = re.search(r'grad_check\(np\.asarray\(\[training_inputs\[(\d+)\]\]\), training_results\[(\d+)\], "(\w+)", (\d+)\)', code)
        if not m or m.group(1) != m.group(2):
            raise NotebookError("cannot parse the grad_check call of %s" % cell["label"])
        values = [(no, GRAD_RE.match(t)) for no, t in cell["body"] if GRAD_RE.match(t)]
        kinds = [g.group(1) for _, g in values]
        if kinds != ["analytic gradient", "numerical gradient", "difference"] * 5:
            raise NotebookError("%s: expected 5 (analytic, numerical, difference) triples" % cell["label"])
        prints = []
        for i in range(5):
            trio = values[3 * i:3 * i + 3]
            n = 1 * 10.0 ** i  # k * math.pow(10, i) with k = 1: the only k the notebook prints
            prints.append({
                "k": 1, "i": i, "N": n, "epsilon": 1.0 / n,
                "analytic": dict(number(trio[0][1].group(2)), line=trio[0][0]),
                "numerical": dict(number(trio[1][1].group(2)), line=trio[1][0]),
                "difference": dict(number(trio[2][1].group(2)), line=trio[2][0]),
            })
        out.append({"cell": cell["label"], "cell_line": cell["line"], "config": config,
                    "example": int(m.group(1)), "parameter": m.group(3), "row": int(m.group(4)),
                    "column": 0, "prints": prints})
    return {"note": "grad_check loops k = 1..4, i = 0..4 (N = k * 10**i, epsilon = 1/N) over columns "
                    "j = 0..9 of the row, but prints only j == 0 and k == 1: five triples per cell.",
            "cells": out}


def extract(text, notebook_path):
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    cells = split_cells(lines)
    seed_cell = find_cell(cells, lambda code: "np.random.seed(" in code, "seeding np.random")
    seed = int(re.search(r"np\.random\.seed\((\d+)\)", "\n".join(t for _, t in seed_cell["body"])).group(1))
    p1 = part1(cells)
    p2 = part2(cells)
    p3 = part3(cells)
    grid_numbers = sum(1 for f in p2["fragments"] for l in f["lines"] if l["value"] is not None)
    counts = {
        "part1": sum(2 for r in p1["runs"] for _ in r["epochs"]),
        "parameter_count": 1,
        "grid_lines": sum(len(f["lines"]) for f in p2["fragments"]),
        "grid_numbers": grid_numbers,
        "grid_numbers_exact": sum(1 for f in p2["fragments"] for l in f["lines"] if l["match"] == "exact"),
        "grid_numbers_prefix": sum(1 for f in p2["fragments"] for l in f["lines"] if l["match"] == "prefix"),
        "grid_labels_cut": sum(1 for f in p2["fragments"] for l in f["lines"] if l["match"] == "none"),
        "grid_best": 2,
        "part3": sum(3 for c in p3["cells"] for _ in c["prints"]),
    }
    counts["total_numbers"] = (counts["part1"] + counts["parameter_count"] + counts["grid_numbers"]
                               + counts["grid_best"] + counts["part3"])
    return {
        "schema_version": SCHEMA_VERSION,
        "source": {
            "notebook": os.path.basename(notebook_path),  # by name: it is not in this repository
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "lines": len(lines),
            "extracted_by": "reference/extract_notebook_numbers.py",
        },
        "seed": {"cell": seed_cell["label"], "cell_line": seed_cell["line"], "np_random_seed": seed},
        "counts": counts,
        "part1": p1,
        "parameter_count": parameter_count(cells, p1["runs"][0]["config"]["units"]),
        "part2": p2,
        "part3": p3,
    }


def render(data, indent=""):
    """JSON with one key per line; lists of scalars and objects of scalars stay on one line."""
    def dump(x):
        return json.dumps(x, ensure_ascii=True, allow_nan=False)
    inner = indent + " "
    flat = isinstance(data, (dict, list)) and not any(
        isinstance(v, (dict, list)) for v in (data.values() if isinstance(data, dict) else data))
    if isinstance(data, dict) and not (flat and len(data) <= 6):
        items = [inner + dump(k) + ": " + render(v, inner) for k, v in data.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}" if items else "{}"
    if isinstance(data, list) and any(isinstance(v, (dict, list)) for v in data):
        return "[\n" + ",\n".join(inner + render(v, inner) for v in data) + "\n" + indent + "]"
    return dump(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--notebook", default=DEFAULT_NOTEBOOK)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = ap.parse_args()
    with open(args.notebook, encoding="utf-8") as f:
        text = f.read()
    try:
        rendered = render(extract(text, args.notebook)) + "\n"
    except NotebookError as e:
        sys.exit("extract_notebook_numbers: %s" % e)
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != rendered:
            sys.exit("%s is stale: re-run reference/extract_notebook_numbers.py" % args.out)
        return
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(rendered)


if __name__ == "__main__":
    main()
