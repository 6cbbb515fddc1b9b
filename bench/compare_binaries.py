#!/usr/bin/env python3
"""Two glorot binaries side by side on `glorot bench-epoch`, interleaved.

Used to show that a refactor costs no speed and changes no bits: each round runs every
binary once per precision (the order alternates between rounds, ABBA, so drift of a shared
machine hits both alike), each run a fresh process with one warm-up and N measured epochs
of the notebook's workload. Prints the median epoch time per binary and precision, the
ratio new/old, and whether the epochs' loss and validation accuracy are bit-identical.

    export GLOROT_MNIST_DIR=/path/to/mnist
    python3 bench/compare_binaries.py OLD_GLOROT NEW_GLOROT --rounds 3 --repeats 3

Extra arguments after `--` go to every `glorot bench-epoch` (e.g. `-- --threads 1`).
Writes nothing; paste the printed table into docs/performance.md with the command.
"""
import argparse, json, statistics, subprocess, sys

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("old"); p.add_argument("new")
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--repeats", type=int, default=3, help="measured epochs per run")
p.add_argument("--precisions", default="f32,f64")
argv = sys.argv[1:]
extra = argv[argv.index("--") + 1:] if "--" in argv else []
argv = argv[:argv.index("--")] if "--" in argv else argv
a = p.parse_args(argv)
a.extra = extra

bins = {"old": a.old, "new": a.new}
times = {(b, pr): [] for b in bins for pr in a.precisions.split(",")}
numbers = {(b, pr): [] for b in bins for pr in a.precisions.split(",")}
for r in range(a.rounds):
    order = list(bins) if r % 2 == 0 else list(reversed(bins))
    for pr in a.precisions.split(","):
        for b in order:
            cmd = [bins[b], "bench-epoch", "--json", "--precision", pr,
                   "--repeats", str(a.repeats), "--warmup", "1", *a.extra]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            for line in out.splitlines():
                rec = json.loads(line)
                times[(b, pr)].append(rec["seconds"])
                numbers[(b, pr)].append((rec["loss"], rec["val_loss"], rec["val_accuracy"]))
            print(f"round {r + 1}/{a.rounds} {pr} {b}: "
                  + " ".join(f"{t:.3f}" for t in times[(b, pr)][-a.repeats:]), file=sys.stderr)

print(f"{'precision':<10}{'old median s':>14}{'new median s':>14}{'new/old':>9}  bits")
ok = True
for pr in a.precisions.split(","):
    mo, mn = statistics.median(times[("old", pr)]), statistics.median(times[("new", pr)])
    same = numbers[("old", pr)] == numbers[("new", pr)]
    ok &= same
    print(f"{pr:<10}{mo:>14.3f}{mn:>14.3f}{mn / mo:>9.3f}  {'identical' if same else 'DIFFERENT'}")
sys.exit(0 if ok else 1)
