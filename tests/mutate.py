"""Mutation testing of the core, for developers (not CI; pytest does not collect this file).

    python tests/mutate.py --limit 80 --seed 0           # a seeded sample of 80 mutants over the whole core
    python tests/mutate.py --module nn/_layers --list    # the mutants of one module, without running anything
    python tests/mutate.py --resume REPORT.json          # finish an interrupted run (same snapshot, same sample)

It copies the repository to a temporary snapshot (so edits made meanwhile do not disturb the run), then, one mutant
at a time, rewrites one spot of one core module (found by glob, so renames do not break it), runs only the fast
tests that cover that module (``-m 'not slow' -x``, see ``TESTS``) with a timeout of 3x their clean time + 30 s, and
records killed / survived / timeout in a JSON report after every mutant (each set of tests first runs once on the
clean snapshot, and must pass there). Operators: arithmetic swap (+ -, * /, ...), comparison boundary or negation,
integer constant +-1 and float constant *2, unary minus or ``not`` dropped, ``and``/``or`` swapped, an epsilon
dropped (``x + eps`` -> ``x``), the first two positional arguments swapped, a statement dropped (a call for its
effect, a re-assignment, an augmented assignment). Docstrings, annotations, decorators, error messages
(``raise``), f-strings, logging, progress bars and timing are not mutated.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import copy
import fnmatch
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The core, by glob (relative to the repo); a regex limits a module to its matching top-level functions.
CORE: dict[str, str | None] = {
    "jaxnets/nn/*.py": None,
    "jaxnets/losses.py": None,
    "jaxnets/losses/*.py": None,
    "jaxnets/train/*step*.py": None,
    "jaxnets/train/*loop*.py": None,
    "jaxnets/train/*state*.py": None,
    "jaxnets/train/*checkpoint*.py": None,
    "jaxnets/data/*batch*.py": None,
    "jaxnets/data/*datasets*.py": r"prepare|_pad_to|check_fits",
}

# Module stem (leading underscores dropped) -> the fast tests that cover it: file globs under tests/, optionally with
# a ``::test_name`` (pytest node id); the sharpest first, since a run stops at the first failure.
TESTS: dict[str, list[str]] = {
    "activations": ["test_nn_layers.py"],
    "conv": ["test_bite.py", "test_conv.py", "test_conv_strategies.py", "test_reference.py"],
    "core": ["test_bite.py", "test_nn_layers.py"],
    "embedding": ["test_recurrent.py"],
    "initializers": ["test_bite.py", "test_nn_layers.py", "test_architecture.py"],
    "layers": ["test_bite.py", "test_nn_layers.py"],
    "pooling": [
        "test_bite.py",
        "test_nn_layers.py",
        "test_reference.py",
        "test_conv.py",
        "test_zoo_cnn.py::test_adaptive_avg_pool",
    ],
    "recurrent": ["test_recurrent.py"],
    "transpose": ["test_gan.py"],
    "losses": [
        "test_bite.py",
        "test_losses.py",
        "test_classic.py",
        "test_style.py::test_gram_matrix_against_einsum_and_loops",
        "test_style.py::test_style_content_and_tv_losses_by_hand",
        "test_autoencoders.py",  # the families' objectives: VAE, RBM, AVB, MDN, metric learning, GAN
        "test_rbm.py",
        "test_avb.py",
        "test_mdn.py",
        "test_metric.py",
        "test_gan.py",
    ],
    "step": [
        "test_bite.py",
        "test_train_step.py::test_make_train_step_is_one_optimiser_update_computed_independently",
        "test_train.py",
    ],
    "loop": ["test_bite.py", "test_train.py", "test_model_selection.py"],
    "state": ["test_bite.py", "test_train.py"],
    "checkpoint": ["test_bite.py", "test_train.py", "test_reliability.py"],
    "batching": ["test_bite.py", "test_data.py"],
    "datasets": ["test_bite.py", "test_data.py"],
}

_LIVE: set[subprocess.Popen] = set()  # test runs under way, killed if this script is stopped
SKIP_LINE = re.compile(r"perf_counter|tqdm|\bbar\b|\blog\(|print\(|warnings\.warn")
SKIP_CALLS = {"log", "print", "warn", "tqdm"}
SWAP = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
}
FLIP = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


def core_modules(root: Path) -> list[tuple[str, str | None]]:
    """(path relative to ``root``, function filter) of every core module present."""
    found: dict[str, str | None] = {}
    for pattern, only in CORE.items():
        for p in sorted(root.glob(pattern)):
            if p.name != "__init__.py":
                found.setdefault(p.relative_to(root).as_posix(), only)
    return sorted(found.items())


def tests_for(root: Path, module: str) -> list[str]:
    """The tests covering ``module`` (paths or node ids): its ``TESTS`` entry, else ``tests/test_<stem>*.py``."""
    stem = Path(module).stem.lstrip("_")
    found: list[str] = []
    for entry in TESTS.get(stem, [f"test_{stem}*.py"]):
        pattern, _, node = entry.partition("::")
        found += [
            p.relative_to(root).as_posix() + (f"::{node}" if node else "")
            for p in sorted((root / "tests").glob(pattern))
        ]
    return list(dict.fromkeys(found))


# --- mutants --------------------------------------------------------------------------------------------------------


def _src(node: ast.AST) -> str:
    return ast.unparse(node)


def _is_eps(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, float):
        return 0 < abs(node.value) < 1e-2
    return isinstance(node, ast.Name | ast.Attribute) and "eps" in _src(node).lower()


def _skipped(tree: ast.Module) -> set[int]:
    """ids of nodes not to mutate: docstrings, annotations, decorators, raise/assert, f-strings, logging calls."""
    skip: set[int] = set()

    def drop(node):
        skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            drop(body[0])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for d in node.decorator_list:
                drop(d)
            if node.returns:
                drop(node.returns)
            for a in ast.walk(node.args):
                if isinstance(a, ast.arg) and a.annotation:
                    drop(a.annotation)
        elif isinstance(node, ast.ClassDef):
            drop(node)  # (dataclasses, exceptions: declarations, not arithmetic)
        elif isinstance(node, ast.AnnAssign):
            drop(node.annotation)
        elif isinstance(node, ast.Raise | ast.Assert | ast.JoinedStr | ast.Import | ast.ImportFrom):
            drop(node)
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in SKIP_CALLS:
                drop(node)
    return skip


def _mutations(node: ast.AST, bound_before) -> list[tuple[str, ast.AST | str]]:
    """(operator, replacement: a node or source) for one node."""
    out: list[tuple[str, ast.AST | str]] = []
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Add):
            for keep, other in ((node.left, node.right), (node.right, node.left)):
                if _is_eps(other):
                    out.append(("drop-eps", keep))
        if type(node.op) in SWAP:
            new = copy.copy(node)
            new.op = SWAP[type(node.op)]()
            out.append(("arith", new))
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in FLIP:
        out.append(("compare", ast.Compare(node.left, [FLIP[type(node.ops[0])]()], node.comparators)))
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if isinstance(node.value, int):
            out += [("const+1", ast.Constant(node.value + 1)), ("const-1", ast.Constant(node.value - 1))]
        else:
            out.append(("const*2", ast.Constant(node.value * 2 if node.value else 1.0)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        out.append(("sign" if isinstance(node.op, ast.USub) else "not", node.operand))
    elif isinstance(node, ast.BoolOp):
        out.append(("bool", ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values)))
    elif (
        isinstance(node, ast.Call)
        and len(node.args) >= 2
        and not any(isinstance(a, ast.Starred) for a in node.args[:2])
        and _src(node.args[0]) != _src(node.args[1])
    ):
        out.append(("swap-args", ast.Call(node.func, [node.args[1], node.args[0], *node.args[2:]], node.keywords)))
    elif (
        (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))
        or isinstance(node, ast.AugAssign)
        or (
            isinstance(node, ast.Assign)
            and all(isinstance(t, ast.Name) and bound_before(t.id, node.lineno) for t in node.targets)
        )
    ):
        out.append(("drop-stmt", "pass"))  # (a call for its effect, an augmented or a re-assignment)
    return out


def mutants_of(root: Path, module: str, only: str | None) -> list[dict]:
    """Every mutant of one module, each with a stable id, its line, and the source of the span it replaces."""
    source = (root / module).read_bytes()
    tree = ast.parse(source)
    skip = _skipped(tree)
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    lines = source.decode().splitlines()
    out = []
    for top in tree.body:
        if only is not None and not (isinstance(top, ast.FunctionDef) and re.fullmatch(only, top.name)):
            continue
        scopes = [f for f in ast.walk(top) if isinstance(f, ast.FunctionDef | ast.Lambda)]

        def bound_before(name: str, lineno: int, scopes=scopes) -> bool:
            for f in scopes:
                if f.lineno <= lineno <= f.end_lineno:
                    args = {a.arg for a in ast.walk(f.args) if isinstance(a, ast.arg)}
                    if name in args or any(
                        isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store) and n.lineno < lineno
                        for n in ast.walk(f)
                    ):
                        return True
            return False

        for node in ast.walk(top):
            if id(node) in skip or not hasattr(node, "lineno") or SKIP_LINE.search(lines[node.lineno - 1]):
                continue
            a = starts[node.lineno - 1] + node.col_offset
            b = starts[node.end_lineno - 1] + node.end_col_offset
            old = source[a:b].decode()
            for op, new in _mutations(node, bound_before):
                text = new if isinstance(new, str) else _src(new)
                if isinstance(new, ast.AST) and not isinstance(new, ast.Constant | ast.Name):
                    text = f"({text})"
                if text.strip("()") == old:
                    continue
                digest = hashlib.sha1(f"{op}|{old}|{text}".encode()).hexdigest()[:8]
                out.append(
                    {
                        "id": f"{module}:{node.lineno}:{node.col_offset}:{op}:{digest}",
                        "module": module,
                        "line": node.lineno,
                        "op": op,
                        "start": a,
                        "end": b,
                        "old": old,
                        "new": text,
                    }
                )
    return out


def apply(root: Path, mutant: dict) -> bytes:
    """Write the mutant into ``root``; returns the original bytes to restore."""
    path = root / mutant["module"]
    original = path.read_bytes()
    path.write_bytes(original[: mutant["start"]] + mutant["new"].encode() + original[mutant["end"] :])
    return original


# --- running --------------------------------------------------------------------------------------------------------


def snapshot(dest: Path) -> Path:
    """A copy of the repository at ``dest`` (no .git, caches or build output)."""
    ignore = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".*_cache", "*.egg-info", "runs", "workdir*")
    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


def run_tests(root: Path, files: list[str], timeout: float, cache: Path) -> tuple[str, float]:
    """'passed', 'failed' or 'timeout' for the fast tests in ``files`` run in ``root``, and the seconds taken.

    XLA's persistent compilation cache (keyed by the compiled program, so a mutant's changed programs miss it) is
    shared by the runs: most of a small JAX test's time is compiling."""
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    mnist = REPO.parent / "shared" / "data" / "mnist"
    if mnist.exists():
        env.setdefault("JAXNETS_TEST_MNIST", str(mnist))
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        "-o",
        "addopts=",
        *files,
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    _LIVE.add(proc)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    finally:  # (also on Ctrl-C: no test run outlives this script)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _LIVE.discard(proc)
    if code is None:
        return "timeout", time.perf_counter() - t0
    return ("passed" if code == 0 else "failed"), time.perf_counter() - t0


def _pooled(jobs: int, fn, items: list):
    """(item, fn(item)) for each item, ``jobs`` at a time, in order; if stopped, the test runs under way end too."""
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        try:
            yield from zip(items, pool.map(fn, items), strict=True)
        finally:  # (their results are not recorded)
            for proc in list(_LIVE):
                os.killpg(proc.pid, signal.SIGKILL)


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt


def _save(report: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, path)


def summarise(report: dict, equivalent: dict[str, str]) -> str:
    ms = report["mutants"].values()
    count = {s: sum(m.get("status") == s for m in ms) for s in ("killed", "survived", "timeout", "untested", None)}
    judged = count["killed"] + count["survived"] + count["timeout"]
    equiv = [m for m in ms if m.get("status") == "survived" and m["id"] in equivalent]
    rate = (count["killed"] + count["timeout"]) / max(1, judged - len(equiv))
    lines = [
        f"{judged} mutants run: {count['killed']} killed, {count['timeout']} timed out (counted as killed), "
        f"{count['survived']} survived ({len(equiv)} listed as equivalent), {count['untested']} untested "
        f"(their tests fail on the clean snapshot), {count[None]} not run (budget);\n"
        f"kill rate {100 * rate:.1f}% of non-equivalent mutants"
    ]
    for m in ms:
        if m.get("status") == "survived":
            why = equivalent.get(m["id"])
            lines.append(
                f"  {'EQUIVALENT ' if why else 'SURVIVED   '}{m['id']}\n      {m['old']!r} -> {m['new']!r}"
                + (f"\n      ({why})" if why else "")
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--module",
        action="append",
        default=[],
        help="only modules whose path matches this glob fragment (e.g. nn/_layers, train/loop); repeatable",
    )
    ap.add_argument("--op", action="append", default=[], help="only these operators (arith, compare, const+1, ...)")
    ap.add_argument("--limit", type=int, default=0, help="run a seeded uniform sample of this many mutants (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="append", default=[], help="run just these mutant ids")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at once (each in its own snapshot)")
    ap.add_argument(
        "--budget",
        type=float,
        default=0,
        help="start no mutant after this many minutes (0: no limit); the rest stay unrun, and --resume runs them",
    )
    ap.add_argument("--list", action="store_true", help="list the mutants and their test files; run nothing")
    ap.add_argument("--report", type=Path, help="JSON report (default: mutation-<time>.json in the snapshot's parent)")
    ap.add_argument("--resume", type=Path, help="continue the run of this report, on its snapshot")
    ap.add_argument(
        "--xla-cache",
        type=Path,
        help="XLA compilation cache to use (default: one beside the snapshot; "
        "reuse an earlier run's to skip compiling the clean programs again)",
    )
    ap.add_argument("--equivalent", type=Path, help="JSON {mutant id: why it is equivalent}, for the kill rate")
    args = ap.parse_args(argv)

    if args.resume:
        report = json.loads(args.resume.read_text())
        args.report, base = args.resume, Path(report["meta"]["snapshot"]).parent
        roots = [Path(report["meta"]["snapshot"])]
    else:
        base = Path(tempfile.mkdtemp(prefix="jaxnets-mutate-"))
        roots = [snapshot(base / "repo")]
        args.report = args.report or base / f"mutation-{time.strftime('%Y%m%dT%H%M%S')}.json"
        pool = [
            m
            for module, only in core_modules(roots[0])
            for m in mutants_of(roots[0], module, only)
            if (not args.module or any(fnmatch.fnmatch(module, f"*{g}*") for g in args.module))
            and (not args.op or m["op"] in args.op)
        ]
        if args.only:
            pool = [m for m in pool if m["id"] in args.only]
        # a seeded random order (and sample): a run stopped by --budget has run a uniform sample of the mutants
        pool = random.Random(args.seed).sample(pool, min(args.limit or len(pool), len(pool)))
        report = {
            "meta": {
                "snapshot": str(roots[0]),
                "source": str(REPO),
                "seed": args.seed,
                "limit": args.limit,
                "argv": sys.argv[1:],
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "load_at_start": os.getloadavg(),
            },
            "baseline": {},
            "mutants": {m["id"]: {**m, "tests": tests_for(roots[0], m["module"])} for m in pool},
        }
    mutants = [m for m in report["mutants"].values() if "status" not in m]
    if args.list:
        for m in mutants:
            print(f"{m['id']}  {m['old']!r} -> {m['new']!r}  [{' '.join(Path(t).name for t in m['tests'])}]")
        print(f"{len(mutants)} mutants")
        if not args.resume:
            shutil.rmtree(base)
        return
    t_start = time.perf_counter()
    roots += [snapshot(base / f"repo{i}") for i in range(len(roots), args.jobs) if not (base / f"repo{i}").exists()]
    roots += [base / f"repo{i}" for i in range(len(roots), args.jobs)]
    print(f"snapshot {roots[0]}; report {args.report}; {len(mutants)} mutants to run", flush=True)
    free = list(roots)
    cache = args.xla_cache or base / "xla-cache"

    locks = {key: threading.Lock() for key in {" ".join(m["tests"]) for m in mutants}}
    saving = threading.Lock()

    def clean_run(root: Path, files: list[str]) -> dict:
        """The tests' run on the clean snapshot (once per set of tests): it must pass, and it sets the timeout."""
        key = " ".join(files)
        with locks[key]:
            if key not in report["baseline"]:
                status, seconds = run_tests(root, files, 3600, cache) if files else ("no tests", 0.0)
                report["baseline"][key] = {"status": status, "seconds": round(seconds, 1)}
                print(f"clean run of [{key}]: {status} in {seconds:.0f} s", flush=True)
                with saving:
                    _save(report, args.report)
        return report["baseline"][key]

    def one(m: dict) -> dict:
        if args.budget and time.perf_counter() - t_start > 60 * args.budget:
            return {}
        root = free.pop()
        try:
            base_run = clean_run(root, m["tests"])
            if base_run["status"] != "passed":
                return {"status": "untested", "seconds": 0.0}
            original = apply(root, m)
            try:
                status, seconds = run_tests(root, m["tests"], 3 * base_run["seconds"] + 30, cache)
            finally:
                (root / m["module"]).write_bytes(original)
            status = {"failed": "killed", "passed": "survived"}.get(status, status)
            return {"status": status, "seconds": round(seconds, 1)}
        finally:
            free.append(root)

    signal.signal(signal.SIGTERM, _stop)
    for i, (m, result) in enumerate(_pooled(args.jobs, one, mutants), 1):
        if result:
            report["mutants"][m["id"]].update(result)
            print(
                f"[{i}/{len(mutants)}] {result['status']:<8} {result['seconds']:6.1f} s  {m['id']}  "
                f"{m['old']!r} -> {m['new']!r}",
                flush=True,
            )
            with saving:
                _save(report, args.report)
    report["meta"].update(
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        load_at_end=os.getloadavg(),
        seconds=round(time.perf_counter() - t_start + report["meta"].get("seconds", 0), 1),
    )
    _save(report, args.report)
    equivalent = json.loads(args.equivalent.read_text()) if args.equivalent else {}
    print(summarise(report, equivalent))


if __name__ == "__main__":
    main()
