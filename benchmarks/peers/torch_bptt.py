#!/usr/bin/python3
"""PyTorch peer for the backprop-through-time comparison (see benchmarks/README.md).

One training step, as in bptt_bench: forward of torch.nn.RNN (tanh) / LSTM / GRU over the
whole sequence, then backward with an upstream gradient of ones on every output (loss =
sum of all outputs), reaching every weight and the input. No optimizer step; gradients
accumulate across steps (no zero_grad), as in bptt_bench. float32, random data, warm-up,
median of the timed steps.

Usage: torch_bptt.py [--threads N] [--filter SUBSTR] [--min-time SECONDS]
Prints one JSON object per benchmark on its own line.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
except ImportError:
    print("torch_bptt.py: PyTorch is not installed (apt-get install python3-torch)",
          file=sys.stderr)
    sys.exit(3)

# Keep in step with benchmarks/common/configs.hpp: name, batch, steps, input, hidden.
CONFIGS = [("S", 16, 50, 64, 64), ("M", 32, 100, 256, 256), ("L", 64, 50, 512, 512),
           ("LONG", 8, 1000, 128, 128)]
CELLS = {"rnn_tanh": 1, "lstm": 4, "gru": 3}


def make_layer(cell, inputs, hidden):
    if cell == "rnn_tanh":
        return torch.nn.RNN(inputs, hidden, nonlinearity="tanh")
    if cell == "lstm":
        return torch.nn.LSTM(inputs, hidden)
    return torch.nn.GRU(inputs, hidden)


def loaded_blas():
    """The BLAS library this process loaded (PyTorch's GEMMs go through it)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "blas" in line}
        return ",".join(sorted(p for p in paths if p.startswith("/"))) or "none"
    except OSError:
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--filter", default="")
    parser.add_argument("--min-time", type=float, default=0.5)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    blas = loaded_blas()
    for name, batch, steps, inputs, hidden in CONFIGS:
        for cell, gates in CELLS.items():
            full = f"bptt/{cell}/{name}/{args.threads}"
            if args.filter and args.filter not in full:
                continue
            layer = make_layer(cell, inputs, hidden).float()
            x = torch.randn(steps, batch, inputs, requires_grad=True)  # time-major [T, B, I]
            ones = torch.ones(steps, batch, hidden)

            def step():
                out, _ = layer(x)
                out.backward(ones)

            for _ in range(3):
                step()
            times = []
            start = time.perf_counter()
            while len(times) < 5 or time.perf_counter() - start < args.min_time:
                t0 = time.perf_counter()
                step()
                times.append((time.perf_counter() - t0) * 1e3)
            ms = statistics.median(times)
            flops = 3.0 * steps * 2.0 * batch * gates * hidden * (inputs + hidden)
            print(json.dumps({"name": full, "cell": cell, "config": name,
                              "threads": args.threads, "ms": round(ms, 4),
                              "min_ms": round(min(times), 4), "repeats": len(times),
                              "gflops": round(flops / (ms * 1e6), 3),
                              "torch": torch.__version__, "blas": blas}), flush=True)


if __name__ == "__main__":
    main()
