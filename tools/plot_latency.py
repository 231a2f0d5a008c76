#!/usr/bin/env python3
"""Plot HdrHistogram percentile distributions (the .hgrm files `idgraph bench realtime
--histogram PREFIX` writes) as latency-by-percentile curves, the way latency is best read:
    tools/plot_latency.py [--log-us] [--title TEXT] OUT.png LABEL=FILE.hgrm [LABEL=FILE.hgrm ...]
--log-us plots microseconds on a logarithmic axis (for lookups, whose median is a few µs and
whose tail may be hundreds); the default is milliseconds on a linear axis (ingest).
Installs matplotlib from PyPI when it is missing."""
import subprocess
import sys


def ensure_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "matplotlib"])


def read_hgrm(path):
    """(percentile, value) pairs from an HdrHistogram plain-text percentile distribution."""
    points = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 4:
                continue
            try:
                value, percentile = float(parts[0]), float(parts[1])
            except ValueError:
                continue
            if percentile < 1.0:
                points.append((percentile, value))
    return points


def main():
    args = sys.argv[1:]
    log_us = False
    title = "idgraph real-time ingest: latency by percentile"
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag == "--log-us":
            log_us = True
        elif flag == "--title" and args:
            title = args.pop(0)
        else:
            sys.exit(f"unknown option {flag}\n{__doc__}")
    if len(args) < 2:
        sys.exit(__doc__)
    ensure_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FixedFormatter

    out = args[0]
    fig, ax = plt.subplots(figsize=(9, 5))
    for spec in args[1:]:
        label, _, path = spec.partition("=")
        points = read_hgrm(path)
        if not points:
            sys.exit(f"{path}: no percentile lines found")
        # x = 1/(1-p) on a log axis spreads the tail: 90%, 99%, 99.9% … equally spaced.
        xs = [1.0 / (1.0 - p) for p, _ in points]
        ys = [v if log_us else v / 1000.0 for _, v in points]
        ax.plot(xs, ys, label=label, linewidth=1.8)
    ticks = [1, 2, 10, 100, 1000, 10000]
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter(["0%", "50%", "90%", "99%", "99.9%", "99.99%"]))
    ax.set_xlabel("percentile")
    if log_us:
        ax.set_yscale("log")
        ax.set_ylabel("latency (µs, log scale)")
    else:
        ax.set_ylabel("latency (ms)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
