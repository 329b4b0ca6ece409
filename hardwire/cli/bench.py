"""`hardwire bench programs|subleq|tm|decode|lengths|certify|tracr`: sizes and throughput (bench/results/*.json)."""
from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="measure compiled sizes and throughput; writes bench/results/*.json")
    b.add_argument("what", choices=["programs", "subleq", "tm", "decode", "lengths", "certify", "tracr"],
                   help="which benchmark (programs: every program in programs/ beside its interpreter and reference)")
    b.add_argument("--quick", action="store_true", help="small sizes on CPU only (what CI runs)")
    b.add_argument("--out", default="bench/results", help="folder for the JSON results")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--only", help="lengths: comma-separated constructions to sweep again (the rest are kept); "
                   "tracr: comma-separated programs to run; subleq: cot, the trace mode alone (the rest is kept); "
                   "decode: some of cells, words, halt (BB(5) to halt)")
    b.add_argument("--long", action="store_true",
                   help="decode: every path to 20,000 tokens, index attention to 65,535, the word chain of thought to "
                        "10^7 and BB(5) to halt (about an hour)")
    b.add_argument("--samples", type=int, help="tracr: random inputs per program and length (default 20; quick 4)")
    b.add_argument("--threads", type=int, default=1,
                   help="intra-op threads for the dense pass (the fast paths always run on one; default 1)")


def cmd_bench(a) -> dict:
    from hardwire.bench.report import write_markdown
    if a.what == "programs":
        from hardwire.bench.programs import bench_programs
        result = bench_programs(a.quick, a.out, a.threads, progress=None if a.json else print)
    elif a.what == "tm":
        from hardwire.bench.tm import bench_tm
        result = bench_tm(a.quick, a.out, a.threads)
    elif a.what == "decode":   # tokens/s against the sequence length per head path (bench/results/decode.json)
        from hardwire.bench.decode import bench_decode
        result = bench_decode(a.quick, a.out, a.threads, a.long, [x for x in (a.only or "").split(",") if x] or None)
    elif a.what == "certify":  # how long `hardwire certify FILE` takes per program (bench/results/certify.json)
        from hardwire.bench.certify import main as bench_certify
        return bench_certify(["-o", str(Path(a.out) / "certify.json")] + (["--default-sizes"] if not a.quick else []))
    elif a.what == "tracr":  # Tracr's library beside hardwire.from_rasp (bench/results/tracr.json, docs/tracr.md)
        from hardwire.bench.tracr import bench_tracr
        return bench_tracr(a.quick, a.out, a.samples, [x for x in (a.only or "").split(",") if x] or None,
                           progress=None if a.json else print)
    elif a.what == "lengths":
        from hardwire.bench.lengths import bench_lengths
        return bench_lengths(a.out, [x for x in (a.only or "").split(",") if x] or None)
    else:
        from hardwire.bench.subleq import bench_subleq
        result = bench_subleq(a.quick, a.out, a.threads, a.only)
    write_markdown(Path(a.out), a.quick)  # README.md beside the JSON: the tables of every bench run there
    return result


def render(info: dict) -> str:
    from hardwire.bench.subleq import table
    from hardwire.bench.tm import tm_table
    if "tracr_tolerance" in info:
        from hardwire.bench.tracr import table as tracr_table
        return tracr_table(info)
    if "constructions" in info:
        return "\n".join(f"{c['program']}: exact through {c['max_exact_length']} (swept {c['lengths_swept']}); "
                         f"{c['layers']} layers, d_model {c['d_model']}, d_mlp {c['d_mlp']} at {c['at_length']}"
                         for c in info["constructions"])
    if "sizes" in info and "machine" in info:  # certify's times
        return "\n".join(f"{n}: certified {r['certified']} at length {r['length']}, {r['total_s']} s"
                         for n, r in info["programs"].items())
    if "runs" in info and "reference" in info:
        from hardwire.bench.decode import decode_table
        return decode_table(info)
    if "programs" in info:
        from hardwire.bench.programs import programs_table
        return programs_table(info)
    return tm_table(info) if "throughput_machine" in info else table(info)
