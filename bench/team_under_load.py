#!/usr/bin/env python3
"""The fused kernels' thread team on a busy machine: OLD and NEW glorot binaries side by
side on `glorot bench-epoch`, with 1 and 2 threads, while another process keeps one CPU
busy (a `yes > /dev/null` pinned with `taskset` to the last CPU), and without it.

This is the situation of a shared machine in which a 2-thread epoch was seen to take twice
as long as usual: the team's helper runs on the CPU the other process wants, is
descheduled in the middle of a task, and the calling thread waits for it (up to a
scheduler time slice for a task of microseconds). The team of the NEW binary detects such
stalls and then runs alone for a while (see `glorot_tensor::fused::team_stats`); its
records carry the counters (`team`: regions, solo_regions, stalls, stall_seconds).

    export GLOROT_MNIST_DIR=/path/to/mnist
    python3 bench/team_under_load.py OLD_GLOROT NEW_GLOROT --rounds 3 --repeats 3

Runs are interleaved (ABBA per round). Prints the median epoch seconds per binary,
thread count and load, the 2-thread/1-thread ratio, and the NEW binary's stalls and solo
regions per epoch. Extra arguments after `--` go to every `glorot bench-epoch`.
Writes nothing.
"""
import argparse, json, os, statistics, subprocess, sys

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("old"); p.add_argument("new")
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--repeats", type=int, default=3, help="measured epochs per run")
p.add_argument("--precision", default="f32")
p.add_argument("--loads", default="idle,hog", help="idle, hog, or both (comma-separated)")
argv = sys.argv[1:]
extra = argv[argv.index("--") + 1:] if "--" in argv else []
argv = argv[:argv.index("--")] if "--" in argv else argv
a = p.parse_args(argv)

cpus = os.cpu_count() or 1
if cpus < 2:
    sys.exit("needs at least 2 CPUs")
bins = {"old": a.old, "new": a.new}
loads = a.loads.split(",")
times, team = {}, {}


def run(binary, threads):
    cmd = [binary, "bench-epoch", "--json", "--precision", a.precision, "--threads", str(threads),
           "--repeats", str(a.repeats), "--warmup", "1", *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


for load in loads:
    hog = None
    if load == "hog":
        hog = subprocess.Popen(["taskset", "-c", str(cpus - 1), "yes"], stdout=subprocess.DEVNULL)
    try:
        for r in range(a.rounds):
            order = list(bins) if r % 2 == 0 else list(reversed(bins))
            for threads in (1, 2):
                for b in order:
                    for rec in run(bins[b], threads):
                        times.setdefault((load, b, threads), []).append(rec["seconds"])
                        if "team" in rec:
                            team.setdefault((load, b, threads), []).append(rec["team"])
    finally:
        if hog:
            hog.kill()
            hog.wait()

print(f"{a.precision}, median epoch seconds over {a.rounds} rounds x {a.repeats} epochs "
      f"(min-max); 'hog' = `yes` pinned to CPU {cpus - 1}")
print(f"{'load':<5} {'binary':<4} {'1 thread':>20} {'2 threads':>20} {'2t/1t':>6}  team (new: per epoch)")
for load in loads:
    for b in bins:
        cell = {}
        for t in (1, 2):
            v = times.get((load, b, t), [])
            cell[t] = (statistics.median(v), min(v), max(v)) if v else None
        fmt = lambda c: f"{c[0]:.3f} ({c[1]:.2f}-{c[2]:.2f})" if c else "-"
        ratio = f"{cell[2][0] / cell[1][0]:.2f}" if cell[1] and cell[2] else "-"
        recs = team.get((load, b, 2), [])
        t = ""
        if recs:
            n = len(recs)
            t = (f"stalls {sum(x['stalls'] for x in recs) / n:.1f}, "
                 f"waited {sum(x['stall_seconds'] for x in recs) / n * 1000:.0f} ms, "
                 f"solo {sum(x['solo_regions'] for x in recs) / max(1, sum(x['regions'] for x in recs)):.0%} "
                 f"of {sum(x['regions'] for x in recs) / n:.0f} regions")
        print(f"{load:<5} {b:<4} {fmt(cell[1]):>20} {fmt(cell[2]):>20} {ratio:>6}  {t}")
