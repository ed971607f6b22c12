"""One simulated night reduced by the local engine and on LocalClusters of 1 and 2 worker processes.

    python -m benchmarks.distributed [--size 2000] [--frames 10] [--lights 10] [--repeat 2]

Prints, per engine: wall time (best of ``--repeat``; the cluster's start-up is not included), the
outputs' agreement with the local engine (sha256 of every file), the number of tasks, the peak RSS of
each worker process, and the scheduler's overhead per task (a round trip of an empty task).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from distributed import get_task_stream

from ccdgui.cli import main as ccdgui_main
from ccdgui.model import execute, intake
from ccdgui.model.cluster import ClusterEngine
from ccdgui.model.plan import make_plan
from ccdgui.model.progress import drive
from ccdgui.model.recipe import Recipe


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss would carry the parent's peak across fork and exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _nothing() -> None:
    return None


def _reduce(night: Path, out: Path, engine=None) -> tuple[float, dict]:
    recipe = Recipe()
    if out.exists():
        shutil.rmtree(out)
    started = time.perf_counter()
    frames = drive(intake.intake([night], medians=False)).frames
    plan = make_plan(frames, recipe, root=night)
    result = drive(execute.execute(plan, recipe, out, engine=engine))
    return time.perf_counter() - started, {o["file"]: o["sha256"] for o in result.outputs}


def _overhead(engine: ClusterEngine, n: int = 400) -> float:
    """Seconds per empty task, submitted and gathered in one batch."""
    started = time.perf_counter()
    engine.client.gather(engine.client.map(lambda i: _nothing(), range(n), pure=False))
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=10, help="biases, darks and flats each")
    parser.add_argument("--lights", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccdgui-bench-dist-") as scratch:
        night = Path(scratch) / "night"
        n = str(args.frames)
        ccdgui_main(["simulate", str(night), "--size", str(args.size), str(args.size), "--n-bias", n,
                     "--n-dark", n, "--n-flat", n, "--n-light", str(args.lights), "--light-exposure", "30"])
        shutil.rmtree(night / "truth")
        print(f"night: {args.size}² frames, {args.frames} biases/darks/flats, {args.lights} lights")
        times = [_reduce(night, Path(scratch) / "local")[0] for _ in range(args.repeat)]
        _, reference = _reduce(night, Path(scratch) / "local")
        print("| engine | time | same sha256 as local | tasks | peak RSS per worker | overhead per task |")
        print("|---|---|---|---|---|---|")
        print(f"| local (2 threads) | {min(times):.2f} s | — | — | {_peak_rss_mb():.0f} MB (client) | — |")
        for workers in (1, 2):
            with ClusterEngine(f"local:{workers}") as engine:
                runs = []
                for _ in range(args.repeat):
                    with get_task_stream(client=engine.client) as stream:
                        runs.append(_reduce(night, Path(scratch) / f"local{workers}", engine))
                same = all(digests == reference for _, digests in runs)
                rss = sorted(engine.client.run(_peak_rss_mb).values())
                busy = sum(part["stop"] - part["start"] for task in stream.data
                           for part in task["startstops"] if part["action"] == "compute")
                overhead = _overhead(engine)
                print(f"| local:{workers} | {min(t for t, _ in runs):.2f} s | {'yes' if same else 'NO'} | "
                      f"{len(stream.data)} ({busy:.2f} s computing) | "
                      f"{', '.join(f'{r:.0f}' for r in rss)} MB | {overhead * 1e3:.2f} ms |")


if __name__ == "__main__":
    main()
