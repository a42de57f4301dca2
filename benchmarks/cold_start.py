"""A cold start of the Lambda handler from the unpacked zip: its import as shipped before (sources only) and
pre-compiled (the zip's bytecode), and the first event after it against a real Redis.

Each run is a fresh interpreter of the runtime's Python version (the one `lamed package` compiles
with), ``-I -S -B`` on the unpacked zip made read-only, as Lambda's ``/var/task``: it imports
``lamed.handlers`` (timed), then handles one new ``/track`` event (timed: reading the config,
connecting, counting) against a real valkey/redis-server behind a loopback proxy adding ``--rtt-ms``
to each turnaround. The two folders alternate, run after run; the medians are printed as wall ms
with the process's CPU ms in brackets (steadier on a busy machine). Then ``-X importtime`` of the
pre-compiled import gives the import tree's top entries (median cumulative time).

    python benchmarks/cold_start.py [--runtime python3.12] [--runs 15] [--rtt-ms 0.5]
"""

import argparse
import io
import json
import re
import statistics
import subprocess
import tempfile
import zipfile
from pathlib import Path

from track import DelayProxy

from lamed.aws.package import build_package, interpreter
from lamed.config import DEFAULT_RUNTIME
from lamed.redis_server import RedisServer

COLD_START = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
clocks = (time.perf_counter, time.process_time)
started = [clock() for clock in clocks]
import lamed.handlers
imported = [clock() for clock in clocks]
flat = {"experiment": "cold", "variant": "red", "event": "participate", "uuid": sys.argv[2]}
response = lamed.track({"httpMethod": "GET", "queryStringParameters": flat})
handled = [clock() for clock in clocks]
assert response["statusCode"] == 200, response
print(json.dumps({
    "import": imported[0] - started[0], "event": handled[0] - imported[0],
    "import CPU": imported[1] - started[1], "event CPU": handled[1] - imported[1],
}))
"""
IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)")


def unpack(data: bytes, folder: Path, bytecode: bool) -> int:
    """Unpack the zip (without its ``__pycache__`` when not ``bytecode``), read-only; the size of that zip."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    kept = [info for info in archive.infolist() if bytecode or "__pycache__" not in info.filename]
    subset = io.BytesIO()
    with zipfile.ZipFile(subset, "w") as copy:
        for info in kept:
            archive.extract(info, folder)
            copy.writestr(info, archive.read(info))  # the same entry, compressed alike
    for path in [*folder.rglob("*"), folder]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return len(subset.getvalue())


def cold_start(python: str, folder: Path, environment: dict, uuid: str, importtime: bool = False) -> tuple[dict, str]:
    command = [python, "-I", "-S", "-B", *(["-X", "importtime"] if importtime else []), "-c", COLD_START, str(folder), uuid]
    done = subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode:
        raise SystemExit(f"the cold start failed: {done.stderr.strip()}")
    return json.loads(done.stdout), done.stderr


def cell(samples: list[dict], parts: tuple) -> str:
    """The median wall time of ``parts`` (ms), and their median CPU time in brackets."""
    wall = statistics.median(sum(sample[part] for part in parts) for sample in samples) * 1000
    cpu = statistics.median(sum(sample[f"{part} CPU"] for part in parts) for sample in samples) * 1000
    return f"{wall:.0f} ({cpu:.0f})"


def import_tree(stderr_runs: list[str], top: int) -> list[tuple[str, float]]:
    """The ``top`` modules by median cumulative import time (ms), each named with its depth in the tree."""
    samples: dict[tuple[int, str], list[int]] = {}
    for stderr in stderr_runs:
        for line in stderr.splitlines():
            if found := IMPORT_LINE.match(line):
                samples.setdefault((len(found.group(2)) // 2, found.group(3)), []).append(int(found.group(1)))
    ranked = sorted(((statistics.median(times) / 1000, key) for key, times in samples.items()), reverse=True)
    return [(f"{'  ' * depth}{name}", ms) for ms, (depth, name) in ranked[:top]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME, help="the Lambda runtime (its Python must be at hand)")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rtt-ms", type=float, default=0.5, help="added to every Redis turnaround")
    parser.add_argument("--top", type=int, default=15, help="how many entries of the import tree to show")
    args = parser.parse_args()
    python = interpreter(args.runtime)
    data = build_package(args.runtime)
    timings = {"as shipped (sources only)": [], "pre-compiled (the zip's bytecode)": []}
    with tempfile.TemporaryDirectory() as scratch, RedisServer() as server:
        proxy = DelayProxy(server.port, args.rtt_ms / 1000)
        environment = {"LAMED_CONFIG_JSON": json.dumps({"redis": {"host": "127.0.0.1", "port": proxy.port}})}
        folders, sizes = {}, {}
        for bytecode, name in enumerate(timings):
            folders[name] = Path(scratch, str(bytecode))
            sizes[name] = unpack(data, folders[name], bool(bytecode))
        for run in range(args.runs):
            for layout, (name, samples) in enumerate(timings.items()):
                samples.append(cold_start(python, folders[name], environment, f"visitor-{layout}-{run}")[0])
        trees = [cold_start(python, folders[name], environment, f"visitor-tree-{run}", importtime=True)[1] for run in range(args.runs)]
        for path in Path(scratch).rglob("*"):
            path.chmod(0o755)
        Path(scratch).chmod(0o755)
    print(f"{args.runtime} ({python}), median of {args.runs} cold starts, Redis {args.rtt_ms} ms away; wall ms (CPU ms)")
    print("| handler code | zip bytes | import lamed.handlers | first event | import + first event |")
    print("|---|---:|---:|---:|---:|")
    for name, samples in timings.items():
        cells = [cell(samples, parts) for parts in (("import",), ("event",), ("import", "event"))]
        print(f"| {name} | {sizes[name]} | {' | '.join(cells)} |")
    print(f"\nimport tree of the pre-compiled import (-X importtime, median cumulative ms, top {args.top}):")
    for module, ms in import_tree(trees, args.top):
        print(f"  {ms:7.1f}  {module}")


if __name__ == "__main__":
    main()
