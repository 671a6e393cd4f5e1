"""Regenerate the committed gRPC/protobuf stubs in ``daprplane/_proto`` from ``proto/``.

The sources live at ``proto/daprplane/_proto/<component>/v1/*.proto``: their ``package``
statements are Dapr's (``dapr.proto.placement.v1`` ...), only the file path is ours, so
the generated modules import each other as ``daprplane._proto...`` without any rewriting
of protoc's output. The file path is not part of the wire format.

Usage::

    python tools/gen_protos.py                 # rewrite daprplane/_proto in this checkout
    python tools/gen_protos.py --out DIR       # write DIR/daprplane/_proto/... instead
    python tools/gen_protos.py --check         # exit 1 if the committed stubs are stale

Needs ``grpcio-tools`` (pinned by the nox session ``protos``): the generator version is
written into every stub, so a different grpcio-tools produces different files.
"""

from __future__ import annotations

import argparse
import difflib
import filecmp
import sys
import tempfile
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
PACKAGE = Path("daprplane", "_proto")

# Suffixes protoc writes for one .proto; anything else under _proto is ours.
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")

INIT_TEXT = {
    PACKAGE: '"""Generated gRPC/protobuf stubs, wire-identical to Dapr 1.18."""\n',
}


def proto_files(proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Every .proto source, in a stable order."""
    return sorted(proto_root.rglob("*.proto"))


def _is_generated(path: Path) -> bool:
    return path.name == "__init__.py" or path.name.endswith(GENERATED_SUFFIXES)


def generate(out_dir: Path | str, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Write the stubs for every source under *proto_root* into ``out_dir/daprplane/_proto``.

    Stale generated files in that directory are removed first. Returns the written files,
    relative to *out_dir*.
    """
    from grpc_tools import protoc  # imported here so --help works without grpcio-tools

    out_dir = Path(out_dir).resolve()
    package_dir = out_dir / PACKAGE
    if package_dir.is_dir():
        for old in package_dir.rglob("*.py*"):
            if old.is_file() and _is_generated(old):
                old.unlink()
    package_dir.mkdir(parents=True, exist_ok=True)

    sources = proto_files(proto_root)
    if not sources:
        raise SystemExit(f"no .proto files under {proto_root}")
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={proto_root}",
        f"--proto_path={well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p) for p in sources),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")

    # Every directory that holds a stub, up to daprplane/_proto, must be a package.
    written = sorted(p for p in package_dir.rglob("*") if p.is_file() and _is_generated(p))
    package_dirs = {package_dir}
    for stub in written:
        parent = stub.parent
        while parent != package_dir:
            package_dirs.add(parent)
            parent = parent.parent
    for directory in sorted(package_dirs):
        rel = directory.relative_to(out_dir)
        (directory / "__init__.py").write_text(INIT_TEXT.get(rel, ""), encoding="utf-8")

    return sorted(
        p.relative_to(out_dir) for p in package_dir.rglob("*") if p.is_file() and _is_generated(p)
    )


def stale_files(committed_root: Path = REPO_ROOT, proto_root: Path = PROTO_ROOT) -> list[str]:
    """Regenerate into a temporary directory; describe every difference from *committed_root*.

    An empty list means the committed stubs are exactly what the generator writes.
    """
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {str(p) for p in generate(tmp, proto_root)}
        committed_dir = committed_root / PACKAGE
        committed = {
            str(p.relative_to(committed_root))
            for p in committed_dir.rglob("*")
            if p.is_file() and _is_generated(p) and "__pycache__" not in p.parts
        }
        for name in sorted(fresh - committed):
            problems.append(f"missing: {name}")
        for name in sorted(committed - fresh):
            problems.append(f"not generated from any .proto: {name}")
        for name in sorted(fresh & committed):
            new, old = Path(tmp, name), committed_root / name
            if not filecmp.cmp(new, old, shallow=False):
                diff = difflib.unified_diff(
                    old.read_text(encoding="utf-8").splitlines(),
                    new.read_text(encoding="utf-8").splitlines(),
                    f"committed/{name}",
                    f"generated/{name}",
                    lineterm="",
                    n=1,
                )
                problems.append(f"differs: {name}\n" + "\n".join(list(diff)[:40]))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT,
        help="directory that receives daprplane/_proto/... (default: this checkout)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the committed stubs differ from fresh ones",
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_files()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("stubs are stale: run `nox -s protos`", file=sys.stderr)
            return 1
        print("stubs are up to date")
        return 0
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
