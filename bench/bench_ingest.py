"""Ingest speed and memory, against a plain xml.etree + base64 reference parser on the same files,
and tabular ingest at several sizes against a pyarrow read of the same parquet tables.

    uv run python bench/bench_ingest.py [--claims 20000] [--big-gb 1.0] [--workdir DIR]
    uv run python bench/bench_ingest.py --tabular 100000,1000000 --claims 0 --big-gb 0
    uv run python bench/bench_ingest.py --xml 100000,1000000 --claims 0 --big-gb 0
    uv run python bench/bench_ingest.py --xml 100000,1000000,4000000 --xml-gz --xml-ref-max 100000 \
        --claims 0 --big-gb 0   # 4M plain is 94 GB: compressed, 7 GB
    uv run python bench/bench_ingest.py --one-per-file 400 --claims 0 --big-gb 0
    uv run python bench/bench_ingest.py --xml 20000 --claims 0 --big-gb 0 --against DIR --repeat 2

Prints claims/s for claimradar's ingest (all workers) and for the reference, their ratio, and the
peak memory (RSS) of ingesting one big batch file, each measured in a fresh subprocess. With
--tabular: per size, a simulated world (simulator, 12 months) ingested in a fresh subprocess
(wall and CPU seconds, claims/s, peak RSS) beside pyarrow reading its xml1/xml2/xml3 parquet
into pandas (the read alone, no checks), so linearity shows as flat claims/s across sizes.
With --xml: per size, envelopes ingested (all workers) beside the reference parse of the same
files, each in a fresh subprocess (claims/s, their ratio, peak RSS of the ingest and of all its
processes). Sizes above 20,000 claims are 20,000 tiled with renamed keys; --xml-gz: compressed.
With --one-per-file N: N envelopes of one dossier each (how most facilities send XML 130), the
same two measurements (ingest with all workers, the reference parse) in fresh subprocesses.
With --against DIR (a checkout of other code, e.g. `git worktree add DIR <commit>`): its ingest
is run from DIR (its code imported) in the same run, alternating with this checkout's --repeat
times, each beside its own reference run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def reference_parse(folder: Path) -> int:
    """The straightforward way: xml.etree iterparse, base64, ET.fromstring, dicts. No checks.
    NAME.xml.gz files are read through gzip."""
    claims = 0
    for path in sorted([*folder.glob("*.xml"), *folder.glob("*.xml.gz")]):
        with gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb") as fh:
            claims += _reference_file(fh)
    return claims


def _reference_file(fh) -> int:
    claims = 0
    rows: dict[str, list[dict]] = {"XML1": [], "XML2": [], "XML3": []}
    for _, el in ET.iterparse(fh, events=("end",)):
        if el.tag != "HOSO":
            continue
        claims += 1
        for fh_ in el.iter("FILEHOSO"):
            loai = fh_.findtext("LOAIHOSO")
            doc = ET.fromstring(base64.b64decode(fh_.findtext("NOIDUNGFILE")))
            recs = [doc] if loai == "XML1" else list(doc[0])
            rows[loai].extend({c.tag: c.text for c in r} for r in recs)
        el.clear()
    return claims


def _child(code: str, cwd: Path | None = None, tree: bool = False) -> dict:
    """Run code in a fresh interpreter (in CWD, by default this checkout: its code is imported);
    return its JSON result plus the child's peak RSS. ``tree``: also 'tree_mb', the peak of the
    PSS summed over the child and its processes (ingest's workers), sampled from here every
    0.1 s (each shared page counted once, split between the processes sharing it; sampled from
    outside, so reading the kernel's page tables is not counted in the child's CPU)."""
    import psutil

    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=cwd or HERE.parent,
    )  # fmt: skip
    peak = 0
    if tree:
        me = psutil.Process(proc.pid)
        while proc.poll() is None:
            total = 0
            with contextlib.suppress(psutil.Error):  # the child ended while being read
                for p in [me, *me.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):  # a worker ended
                        total += p.memory_full_info().pss
            peak = max(peak, total)
            time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, "child", out, err)
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "tree_mb": peak / 2**20} if tree else result


# Appended to each child's code: its own peak RSS and its workers' (Linux reports KiB). Its own
# is VmHWM: ru_maxrss of RUSAGE_SELF keeps the parent's peak across fork and exec (a child of a
# bench that simulated 1M claims in process reported the bench's 3.2 GB, peer and ingest alike).
PEAK = (
    "import re as _re, resource as _r; _m = max(int(_re.search(r'VmHWM:\\s+(\\d+)',"
    " open('/proc/self/status').read()).group(1)),"
    " _r.getrusage(_r.RUSAGE_CHILDREN).ru_maxrss) / 1024\n"
)


def tabular_bench(
    work: Path, sizes: list[int], workers: list[int], chunk: int = 2_000, paths=("ordered",)
) -> None:
    """Per size: the tabular input ingested in a fresh process with each number of WORKERS
    (partitions validated by that many processes), beside the peer (pyarrow's read of the same
    tables into pandas). CPU seconds count the workers'; RSS is the main process's peak, "all"
    the peak of the PSS summed over it and its workers (_child's tree: the memory the ingest
    holds on the machine)."""
    rows = []
    for n in sizes:
        src = work / f"tabular-{n}"
        if not (src / "xml1.parquet").exists():  # in a child: this process stays small
            _child(
                f"import simulator; simulator.simulate({str(src)!r}, {n}, months=12,"
                " start='2025-01', seed=1); print('{}')"
            )
        peer = _child(
            "import json, time, pyarrow.parquet as pq\n"
            "t = time.perf_counter(); c = time.process_time()\n"
            f"n = [len(pq.read_table({str(src)!r} + f'/{{s}}.parquet').to_pandas())"
            " for s in ('xml1', 'xml2', 'xml3')][0]\n"
            + PEAK
            + "print(json.dumps({'s': time.perf_counter() - t, 'cpu': time.process_time() - c,"
            " 'claims': n, 'peak_rss_mb': _m}))"
        )
        for w, path in [(w, p) for w in workers for p in paths]:
            ours = _child(
                "import json, time; from pathlib import Path\n"
                "from contract.ingest import Limits, ingest\n" + CPU + "_c0 = _cpu_now()\n"
                f"t = time.perf_counter(); r = ingest(Path({str(src)!r}),"
                f" Path({str(work / f'tabular-out-{n}')!r}), limits=Limits(workers={w},"
                f" chunk_claims={chunk}, ordered_input={path == 'ordered'}),"
                " linkage_key='bench-key')\n"
                "_s = time.perf_counter() - t\n"
                + PEAK
                + "print(json.dumps({'s': _s, 'cpu': _cpu_now() - _c0, 'claims': r.read['claims'],"
                " 'peak_rss_mb': _m}))",
                tree=True,
            )
            label = "" if path == "ordered" else ", spilled"
            rows.append((f"claimradar tabular, {w} worker(s){label}", ours))
        rows.append(("pyarrow read to pandas (peer)", peer))
    print(f"\n{'tabular':38} {'claims':>9} {'wall s':>7} {'cpu s':>7} {'claims/s':>9} "
          f"{'per cpu s':>9} {'RSS MB':>7} {'all MB':>7}")  # fmt: skip
    for name, r in rows:
        print(
            f"{name:38} {r['claims']:>9,} {r['s']:>7.1f} {r['cpu']:>7.1f} "
            f"{r['claims'] / r['s']:>9,.0f} {r['claims'] / r['cpu']:>9,.0f} "
            f"{r['peak_rss_mb']:>7,.0f} {r.get('tree_mb', r['peak_rss_mb']):>7,.0f}"
        )


# CPU seconds of a child and of the processes it waited for (ingest's workers): claims per CPU
# second hold still on a machine shared with other work, where wall-clock rates do not. Counted
# from just before the work (_c0), not from the interpreter's start: importing pandas and pyarrow
# costs ~1 CPU-s, which was most of the CPU time of a run of a few hundred claims.
CPU = (
    "import resource as _r\n"
    "def _cpu_now(): return sum(getattr(_r.getrusage(w), a) for w in"
    " (_r.RUSAGE_SELF, _r.RUSAGE_CHILDREN) for a in ('ru_utime', 'ru_stime'))\n"
)


# Envelopes of more than this many claims are tiled from this many (renamed copies: see
# envelopes.tile_envelopes), not written one by one (~1,000 claims/s on a free core).
TILE_BASE = 20_000


def xml_bench(
    work: Path,
    sizes: list[int],
    workers: int,
    per_file: int = 1000,
    against: Path | None = None,
    repeat: int = 1,
    gz: bool = False,
    ref_max: int = 1_000_000,
) -> None:
    """Per size: envelopes (PER_FILE dossiers a file) ingested in a fresh subprocess beside the
    reference parse of the same files in another: claims/s (wall) and claims per CPU second
    (all processes), their ratios, the ingest's peak RSS; linearity shows as flat rates.
    Sizes above TILE_BASE (1,000 a file) are TILE_BASE claims tiled with renamed keys; gz: the
    files gzip-compressed (NAME.xml.gz, read inflated by both). The reference is not run above
    REF_MAX claims (at ~2,000 claims/s it would take half an hour at 4M).
    AGAINST: another checkout (a `git worktree` of the code before) whose ingest is measured in
    the same run, alternating with this one REPEAT times, each beside its own reference run."""
    name = ("xml" if per_file == 1000 else f"{per_file}/f") + (".gz" if gz else "")
    print(f"\n{name:6} {'code':>6} {'claims':>9} {'ingest s':>9} {'claims/s':>9} {'per cpu s':>9} "
          f"{'RSS MB':>7} {'all MB':>7} {'ref s':>7} {'ref/s':>7} {'ref/cpu s':>9} {'ratio':>6} "
          f"{'cpu ratio':>9}")  # fmt: skip
    for n in sizes:
        tiled = per_file == 1000 and (n > TILE_BASE or gz)
        src = work / (f"xml-{n}" if per_file == 1000 else f"xml-{n}-per-{per_file}")
        if tiled:
            assert n % TILE_BASE == 0, f"tiled sizes are multiples of {TILE_BASE:,}"
            src = work / (f"xml-{n}-tiled" + ("-gz" if gz else ""))
        base = work / f"xml-{TILE_BASE}" if tiled else src
        if not (base / ".done").exists():
            _child(
                "import sys; sys.path.insert(0, 'bench'); from pathlib import Path;"
                " from envelopes import write_envelopes;"
                f" write_envelopes(Path({str(base)!r}), {min(n, TILE_BASE) if tiled else n},"
                f" per_file={per_file}); Path({str(base)!r}, '.done').touch(); print('{{}}')"
            )
        if tiled and not (src / ".done").exists():
            t = time.perf_counter()
            shutil.rmtree(src, ignore_errors=True)
            _child(
                "import sys; sys.path.insert(0, 'bench'); from pathlib import Path;"
                " from envelopes import tile_envelopes;"
                f" b = tile_envelopes(Path({str(base)!r}), Path({str(src)!r}),"
                f" {n // TILE_BASE}, gz={gz}); Path({str(src)!r}, '.done').touch();"
                " print('{}')"
            )
            size = sum(p.stat().st_size for p in src.iterdir())
            print(f"  (tiled {n:,} claims: {size / 1e9:.1f} GB in {time.perf_counter() - t:.0f} s)")
        codes = [("this", None)] + ([("before", against)] if against else [])
        for _ in range(repeat):
            for label, cwd in codes:
                _xml_row(work, src, workers, label, cwd, with_ref=n <= ref_max)


def _xml_row(
    work: Path, src: Path, workers: int, label: str, cwd: Path | None, with_ref: bool = True
) -> None:
    if not with_ref:
        ours = _ingest_xml(work, src, workers, cwd)
        rate, cpu = ours["claims"] / ours["s"], ours["claims"] / ours["cpu"]
        print(
            f"{'':6} {label:>6} {ours['claims']:>9,} {ours['s']:>9.1f} {rate:>9,.0f} {cpu:>9,.0f} "
            f"{ours['peak_rss_mb']:>7,.0f} {ours['tree_mb']:>7,.0f}  (no reference run)",
            flush=True,
        )
        return
    ref = _child(
        "import sys, json, time; sys.path.insert(0, 'bench'); from pathlib import Path\n"
        "from bench_ingest import reference_parse\n" + CPU + "_c0 = _cpu_now()\n"
        f"t = time.perf_counter(); n = reference_parse(Path({str(src)!r}))\n"
        + PEAK
        + "print(json.dumps({'s': time.perf_counter() - t, 'claims': n, 'peak_rss_mb': _m,"
        " 'cpu': _cpu_now() - _c0}))"
    )
    ours = _ingest_xml(work, src, workers, cwd)
    ours_rate, ref_rate = ours["claims"] / ours["s"], ref["claims"] / ref["s"]
    ours_cpu, ref_cpu = ours["claims"] / ours["cpu"], ref["claims"] / ref["cpu"]
    print(
        f"{'':6} {label:>6} {ours['claims']:>9,} {ours['s']:>9.1f} {ours_rate:>9,.0f} "
        f"{ours_cpu:>9,.0f} {ours['peak_rss_mb']:>7,.0f} {ours['tree_mb']:>7,.0f} "
        f"{ref['s']:>7.1f} {ref_rate:>7,.0f} {ref_cpu:>9,.0f} {ours_rate / ref_rate:>5.2f}x "
        f"{ours_cpu / ref_cpu:>8.2f}x",
        flush=True,
    )


def _ingest_xml(work: Path, src: Path, workers: int, cwd: Path | None) -> dict:
    """The ingest of SRC in a fresh process: seconds, claims, CPU seconds (all processes), peak
    RSS of the largest process, and of all processes together (tree_mb, PSS sampled)."""
    out = work / f"{src.name}-out"
    shutil.rmtree(out, ignore_errors=True)  # a run before: its output is not appended to
    ours = _child(
        "import json, time; from pathlib import Path\n"
        "from contract.ingest import ingest, Limits\n" + CPU + "_c0 = _cpu_now()\n"
        f"t = time.perf_counter(); r = ingest(Path({str(src)!r}), Path({str(out)!r}),"
        f" limits=Limits(workers={workers}), linkage_key='bench-key')\n"
        + PEAK
        + "print(json.dumps({'s': time.perf_counter() - t, 'claims': r.written['claims'], "
        "'peak_rss_mb': _m, 'cpu': _cpu_now() - _c0}))",
        cwd,
        tree=True,
    )
    shutil.rmtree(out, ignore_errors=True)  # (4M claims write ~3 GB)
    return ours


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=20_000)
    ap.add_argument("--big-gb", type=float, default=1.0, help="size of the big file; 0 skips")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--tabular", default="", help="comma-separated sizes (claims), e.g. 100000")
    ap.add_argument(
        "--tabular-workers",
        default="2",
        help="with --tabular: comma-separated worker counts, each measured, e.g. 1,2",
    )
    ap.add_argument(
        "--tabular-paths",
        default="ordered",
        help="with --tabular: ordered (an input in claim order read as it is, the default) "
        "and/or spill (every input spilled by key hash: Limits.ordered_input=False)",
    )
    ap.add_argument(
        "--chunk-claims", type=int, default=2_000, help="with --tabular: Limits.chunk_claims"
    )
    ap.add_argument(
        "--xml",
        default="",
        help="comma-separated sizes (claims) of an XML sweep, e.g. 100000,1000000 (about 23 KB of"
        " envelope a claim: 1M claims is 23 GB in WORKDIR; use --claims 0 --big-gb 0 beside it)",
    )
    ap.add_argument(
        "--xml-gz", action="store_true", help="with --xml: the envelopes gzip-compressed (.xml.gz)"
    )
    ap.add_argument(
        "--xml-ref-max",
        type=int,
        default=1_000_000,
        help="with --xml: no reference parse above this many claims",
    )
    ap.add_argument(
        "--one-per-file",
        type=int,
        default=0,
        help="claims of an XML run with one dossier (HOSO) per envelope file, e.g. 400",
    )
    ap.add_argument(
        "--against",
        type=Path,
        default=None,
        help="with --xml/--one-per-file: another checkout (e.g. a git worktree of the code before)"
        " whose ingest is measured in the same run, alternating with this one",
    )
    ap.add_argument("--repeat", type=int, default=1, help="with --against: rounds of the pair")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    if args.tabular:
        sizes = [int(x) for x in args.tabular.split(",")]
        workers = [int(x) for x in args.tabular_workers.split(",")]
        paths = args.tabular_paths.split(",")
        tabular_bench(work, sizes, workers, args.chunk_claims, paths)
    if args.xml:
        sizes = [int(x) for x in args.xml.split(",")]
        xml_bench(
            work, sizes, args.workers, against=args.against, repeat=args.repeat,
            gz=args.xml_gz, ref_max=args.xml_ref_max,
        )  # fmt: skip
    if args.one_per_file:
        xml_bench(
            work, [args.one_per_file], args.workers, 1, against=args.against, repeat=args.repeat
        )
    if args.claims <= 0:
        return
    from envelopes import write_big_envelope, write_envelopes

    env_dir = work / "envelopes"
    if not env_dir.exists():
        size = write_envelopes(env_dir, args.claims)
        print(f"wrote {args.claims:,} claims in {size / 1e6:,.0f} MB of envelopes -> {env_dir}")

    t = time.perf_counter()
    n_ref = reference_parse(env_dir)
    ref_s = time.perf_counter() - t
    ours = _child(
        "import json, time; from pathlib import Path; from contract.ingest import ingest, Limits\n"
        f"t = time.perf_counter(); r = ingest(Path({str(env_dir)!r}), Path({str(work / 'out')!r}),"
        f" limits=Limits(workers={args.workers}), linkage_key='bench-key')\n"
        + PEAK
        + "print(json.dumps({'s': time.perf_counter() - t, 'claims': r.written['claims'], "
        "'peak_rss_mb': _m}))"
    )
    rows = [
        ("claimradar ingest (parse + validate + write)", ours["claims"], ours["s"]),
        ("reference xml.etree + base64 (parse only)", n_ref, ref_s),
    ]
    print(f"\n{'parser':48} {'claims':>8} {'seconds':>8} {'claims/s':>9}")
    for name, n, s in rows:
        print(f"{name:48} {n:>8,} {s:>8.2f} {n / s:>9,.0f}")
    print(f"ratio claimradar / reference: {(ours['claims'] / ours['s']) / (n_ref / ref_s):.2f}x")
    print(f"peak RSS of the ingest (largest process): {ours['peak_rss_mb']:,.0f} MB")

    if args.big_gb > 0:
        big = work / "big.xml"
        if not big.exists():
            n = write_big_envelope(big, int(args.big_gb * 1024**3))
            print(f"\nwrote {big.stat().st_size / 1e9:.2f} GB with {n:,} claims -> {big}")
        res = _child(
            "import json, time; from pathlib import Path; from contract.ingest import ingest\n"
            f"t = time.perf_counter(); r = ingest(Path({str(big)!r}), "
            f"Path({str(work / 'big_out')!r}), linkage_key='bench-key')\n"
            + PEAK
            + "print(json.dumps({'s': time.perf_counter() - t, 'claims': r.written['claims'], "
            "'peak_rss_mb': _m}))"
        )
        print(
            f"big file: {res['claims']:,} claims in {res['s']:.1f} s "
            f"({res['claims'] / res['s']:,.0f} claims/s), peak RSS {res['peak_rss_mb']:,.0f} MB"
        )


if __name__ == "__main__":
    main()
