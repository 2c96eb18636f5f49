"""Training throughput (images/s) on this machine: networks, process counts, batch-norm sync.

Every row trains on the synthetic generator (rendering is ~1 ms per image, negligible here) through the
real ``train.py`` and reads images/s from its console log, skipping the first log window (start-up).
Peers measured in the same run:

* 1 process vs 2 gloo processes with the same global batch (``paddle.distributed.launch``);
* 2 processes with ``sync_bn`` (our gloo SyncBatchNorm) vs without.

    python benchmarks/bench_training.py                 # ~3 min on a 2-core CPU
    python benchmarks/bench_training.py --steps 12 --networks MobileFaceNet_128

On a GPU machine add ``--device gpu --fp16`` (AMP) and larger ``--batch``.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

from prettytable import PrettyTable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG_EVERY = 2


def run(network, processes, batch, steps, device, fp16, sync_bn, image_size, workdir):
    output = os.path.join(workdir, f"{network}_{processes}_{int(sync_bn)}")
    args = [os.path.join(REPO, "train.py"), "-c", os.path.join(REPO, "configs", "synthetic_tiny.yaml"),
            "--network", network, "--output", output, "--batch_size", str(batch // processes),
            "-o", "backbone_kwargs={}", "-o", f"embedding_size={512 if network.startswith('iResNet') else 128}",
            "-o", f"data.image_size={image_size}", "-o", f"max_steps={steps}", "-o", f"log_every={LOG_EVERY}",
            "-o", "checkpoint_every_steps=0", "-o", "data.num_workers=0", "-o", f"device={device}",
            "-o", f"fp16={str(fp16).lower()}", "-o", f"sync_bn={str(sync_bn).lower()}", "-o", "num_epochs=100"]
    if processes > 1:
        log_dir = os.path.join(workdir, f"log_{network}_{processes}_{int(sync_bn)}")
        command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(processes),
                   "--log_dir", log_dir, *args]
        subprocess.run(command, check=True, capture_output=True, text=True)
        with open(os.path.join(log_dir, "workerlog.0")) as handle:
            text = handle.read()
    else:
        text = subprocess.run([sys.executable, *args], check=True, capture_output=True, text=True).stdout
    speeds = [float(v) for v in re.findall(r"images/s ([0-9.]+)", text)]
    if len(speeds) < 2:
        raise SystemExit(f"{network}: too few log lines to measure (raise --steps)")
    return statistics.median(speeds[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", nargs="+", default=["MobileFaceNet_128", "iResNet50"])
    parser.add_argument("--batch", type=int, default=16, help="global batch")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--image_size", type=int, default=112)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fp16", action="store_true")
    args = parser.parse_args()
    table = PrettyTable(["network", "setup", "global batch", "images/s", "ratio vs 1 process"])
    with tempfile.TemporaryDirectory() as workdir:
        for network in args.networks:
            steps = args.steps if network.startswith("Mobile") else max(LOG_EVERY * 2, args.steps // 2)
            common = dict(network=network, batch=args.batch, steps=steps, device=args.device, fp16=args.fp16,
                          image_size=args.image_size, workdir=workdir)
            single = run(processes=1, sync_bn=False, **common)
            table.add_row([network, "1 process", args.batch, f"{single:.1f}", "1.00"])
            if network.startswith("Mobile"):
                for sync_bn in (False, True):
                    speed = run(processes=2, sync_bn=sync_bn, **common)
                    label = "2 gloo processes" + (" + sync_bn" if sync_bn else "")
                    table.add_row([network, label, args.batch, f"{speed:.1f}", f"{speed / single:.2f}"])
    print(table)


if __name__ == "__main__":
    main()
