"""Build Go binaries once into a locked cache directory, with progress.

Tests and benchmarks run genuine binaries (kube-apiserver and etcd, Dapr's daprd and control
plane, helm), each pinned by a small Go module in a ``tools`` directory of this test tree.
Building them takes minutes, so each is built once into
``$XDG_CACHE_HOME/daprplane/<cache_name>/<key>/`` (``~/.cache`` when unset) and reused from
there; ``<key>`` names the pinned version and hashes the module files and the build flags, so
changing either builds afresh beside the old binaries.

:class:`GoTools` describes one such module and does what each of its builders needs: read a
pinned version from ``go.mod``, hash the cache key, find ``go``, hold a file lock so concurrent
callers (parallel runs, xdist workers) wait for a single build, build into a staging directory
and move the results into place so nobody sees a half-written binary, report progress on stderr
with the time elapsed, and stop ``go`` when interrupted.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROGRESS_EVERY_SECONDS = 30.0
_DEFAULT_GO = "/usr/local/go/bin/go"


def executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def stamped_ldflags(stamps: Mapping[str, str]) -> str:
    """An ``-ldflags`` value that strips symbols and sets each ``package.variable`` to a value."""
    return " ".join(["-s", "-w", *(f"-X {name}={value}" for name, value in stamps.items())])


def go_build_args(flags: Sequence[str], packages: Sequence[str], out_dir: Path) -> list[str]:
    """``go`` arguments building ``packages`` into ``out_dir``, each binary named by go."""
    return ["build", *flags, "-o", f"{out_dir}{os.sep}", *packages]


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries that run anywhere; module files are the pinned ones, never rewritten.
    # GOPROXY and the user's own GOFLAGS pass through.
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = f"{env.get('GOFLAGS', '')} -mod=readonly -buildvcs=false".strip()
    env["GOWORK"] = "off"
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def _wait(process: subprocess.Popen[bytes], seconds: float) -> int | None:
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


@dataclass(frozen=True)
class GoTools:
    """A Go module pinning binaries to build, where they are cached, and how to report on it."""

    directory: Path
    """The module (``go.mod``, ``go.sum``) the binaries are built in."""
    cache_name: str
    """Builds are cached under ``$XDG_CACHE_HOME/daprplane/<cache_name>/``."""
    log_tag: str
    """Progress lines on stderr start with ``[<log_tag>]``."""
    purpose: str
    """What go is needed for, in the error raised without it: "... needed to build <purpose>"."""
    instead: str
    """What the user can do instead of installing go, in that same error."""
    failure_hint: str = ""
    """Appended to the error raised when ``go build`` fails."""

    def required_version(self, module: str) -> str:
        """The version of ``module`` that ``go.mod`` requires, e.g. ``v1.18.3``."""
        text = (self.directory / "go.mod").read_text()
        pattern = rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)"
        match = re.search(pattern, text, re.MULTILINE)
        if not match:
            raise RuntimeError(f"{module} is not required by {self.directory / 'go.mod'}")
        return match.group(1)

    def key_hash(self, build_args: Sequence[str]) -> str:
        """Ten hex digits that change whenever the module files or ``build_args`` do."""
        digest = hashlib.sha256()
        for file_name in ("go.mod", "go.sum"):
            digest.update((self.directory / file_name).read_bytes())
        digest.update(" ".join(build_args).encode())
        return digest.hexdigest()[:10]

    def cache_root(self) -> Path:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "daprplane" / self.cache_name

    def log(self, message: str) -> None:
        print(f"[{self.log_tag}] {message}", file=sys.stderr, flush=True)

    def find_go(self) -> str:
        """``$GO``, else ``go`` on PATH, else the usual install location."""
        for candidate in (os.environ.get("GO"), shutil.which("go"), _DEFAULT_GO):
            if candidate and os.access(candidate, os.X_OK):
                return candidate
        raise RuntimeError(
            f"the Go toolchain is needed to build {self.purpose}: put `go` on PATH (or set "
            f"GO=/path/to/go), or {self.instead}"
        )

    @contextmanager
    def locked(self, dest: Path, what: str) -> Iterator[None]:
        """Hold the lock of ``dest``'s build, saying so when another process holds it first."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest.parent / f".{dest.name}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.log(f"waiting for another process building {what} into {dest}")
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def build_once(
        self, dest: Path, complete: Callable[[], bool], build: Callable[[], object], what: str
    ) -> Path:
        """Return ``dest``, calling ``build`` first unless ``complete()`` already holds.

        The check is repeated under the lock, so a caller that waited for another process's
        build finds its binaries in place and builds nothing.
        """
        if complete():
            return dest
        with self.locked(dest, what):
            if not complete():
                build()
        return dest

    def build(
        self,
        dest: Path,
        flags: Sequence[str],
        packages: Sequence[str],
        binaries: Sequence[str],
        *,
        what: str,
        note: str,
        version_text: str,
        go_names: Mapping[str, str] | None = None,
    ) -> float:
        """Build ``packages`` and install ``binaries`` into ``dest``; return the seconds taken.

        ``go_names`` maps an installed name to the name go gives that binary where they differ.
        Each binary is moved into place whole, and ``dest/VERSION`` gets ``version_text``.
        ``what`` names the build in progress lines; ``note`` follows the first one.
        """
        go = self.find_go()
        renamed = go_names or {}
        dest.mkdir(parents=True, exist_ok=True)
        # Staging inside dest keeps it on the same file system, so each move is atomic.
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=dest))
        self.log(f"building {what} into {dest}{note}")
        started = time.monotonic()
        try:
            self._run([go, *go_build_args(flags, packages, staging)], what)
            built = {name: staging / renamed.get(name, name) for name in binaries}
            missing = [name for name, path in built.items() if not executable(path)]
            if missing:
                raise RuntimeError(f"go build did not produce {missing} in {staging}")
            for name, path in built.items():
                os.replace(path, dest / name)
            (dest / "VERSION").write_text(version_text)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        elapsed = time.monotonic() - started
        self.log(f"built {what} in {elapsed:.0f}s")
        return elapsed

    def _run(self, command: Sequence[str], what: str) -> None:
        started = time.monotonic()
        with subprocess.Popen(command, cwd=self.directory, env=_build_env()) as process:
            try:
                while (returncode := _wait(process, PROGRESS_EVERY_SECONDS)) is None:
                    self.log(f"still building {what}: {time.monotonic() - started:.0f}s elapsed")
            except BaseException:
                # Interrupted (Ctrl-C, test timeout): do not leave a compiler running behind us.
                process.kill()
                raise
        if returncode != 0:
            raise RuntimeError(
                f"`{' '.join(command)}` failed with exit code {returncode} "
                f"(see go's messages above){self.failure_hint}"
            )
