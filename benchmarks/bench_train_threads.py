"""CPU training threads: Paddle's one thread per process (before) vs cores available / processes (now, default).

Paddle sets ``OMP_NUM_THREADS=1`` at import and ``paddle.distributed.launch`` passes it on, so every CPU run
used one core per process.  The trainer now sets its math threads to the cores this process may use divided
by the training processes on the machine (``cpu_threads: 0``).  Peers in the same run, through the real
``train.py`` on synthetic data: ``-o cpu_threads=1`` (the old behaviour) vs the default, for 1 process and for
2 gloo processes (``--nproc_per_node 2``).  images/s is the median of the console windows after the first.

Wall-clock images/s needs an idle machine.  A second table does not: the share of a training step's CPU
time that runs on threads other than the main one (per-thread CPU ticks from /proc over forward + backward
passes), i.e. how much of Paddle's eager CPU work the extra threads take over at all.

    python benchmarks/bench_train_threads.py                   # MobileFaceNet_128, 112×112, global batch 16
    python benchmarks/bench_train_threads.py --steps 12 --batch 32
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


def images_per_second(network, processes, batch, steps, threads, workdir):
    output = os.path.join(workdir, f"{network}_{processes}_{threads}")
    command = [sys.executable, os.path.join(REPO, "train.py"), "-c", os.path.join(REPO, "configs",
                                                                                  "synthetic_tiny.yaml"),
               "--network", network, "--output", output, "--batch_size", str(batch // processes),
               "-o", "backbone_kwargs={}", "-o", "embedding_size=128", "-o", "data.image_size=112",
               "-o", f"max_steps={steps}", "-o", f"log_every={LOG_EVERY}", "-o", "checkpoint_every_steps=0",
               "-o", "data.num_workers=0", "-o", "num_epochs=100", "-o", f"cpu_threads={threads}"]
    if processes > 1:
        command += ["--nproc_per_node", str(processes)]
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"train.py failed:\n{done.stderr[-2000:]}")
    text = done.stdout
    if processes > 1:
        with open(os.path.join(output, "launch_logs", "workerlog.0"), encoding="utf-8") as handle:
            text = handle.read()
    used = re.search(r"CPU threads (\d+) per process", text)
    speeds = [float(v) for v in re.findall(r"images/s ([0-9.]+)", text)]
    if len(speeds) < 2:
        raise SystemExit(f"{network}: too few log lines to measure (raise --steps)")
    return statistics.median(speeds[1:]), int(used.group(1)) if used else None


def work_on_other_threads(network, threads, batch=8, steps=3):
    """Share of CPU time spent off the main thread during ``steps`` forward + backward passes."""
    import paddle  # heavy: only for this measurement

    from arcface_paddle.backbones import get_model
    from arcface_paddle.core.processes import set_math_threads

    paddle.set_device("cpu")
    set_math_threads(threads)
    model = get_model(network)
    images = paddle.randn([batch, 3, 112, 112])

    def ticks():
        found = {}
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            found[task] = int(fields[11]) + int(fields[12])      # utime + stime
        return found

    model(images).sum().backward()                             # warm-up: thread pools started
    before = ticks()
    for _ in range(steps):
        model(images).sum().backward()
    after = ticks()
    spent = {task: after[task] - before.get(task, 0) for task in after}
    main_thread = str(os.getpid())
    total = sum(spent.values())
    return (total - spent.get(main_thread, 0)) / total if total else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="MobileFaceNet_128")
    parser.add_argument("--batch", type=int, default=16, help="global batch")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--split_networks", nargs="+", default=["MobileFaceNet_128", "iResNet18"],
                        help="networks for the work-split table")
    args = parser.parse_args()
    table = PrettyTable(["processes", "threads per process", "images/s", "ratio vs 1 thread"])
    with tempfile.TemporaryDirectory() as workdir:
        for processes in (1, 2):
            before, _ = images_per_second(args.network, processes, args.batch, args.steps, 1, workdir)
            after, threads = images_per_second(args.network, processes, args.batch, args.steps, 0, workdir)
            table.add_row([processes, "1 (Paddle's default, before)", f"{before:.1f}", "1.00"])
            table.add_row([processes, f"{threads} (cores / processes, now)", f"{after:.1f}", f"{after / before:.2f}"])
    print(f"{args.network}, global batch {args.batch}, {os.cpu_count()} CPUs visible, "
          f"{len(os.sched_getaffinity(0))} usable")
    print(table)
    threads = len(os.sched_getaffinity(0))
    split = PrettyTable(["network", "threads", "CPU time off the main thread"])
    for network in args.split_networks:
        split.add_row([network, threads, f"{100 * work_on_other_threads(network, threads):.0f} %"])
    print(split)


if __name__ == "__main__":
    main()
