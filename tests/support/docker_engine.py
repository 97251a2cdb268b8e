"""A Docker engine of the tests' own, a Debian base image made without a registry, and the
service image built from deploy/Dockerfile on it (tests/e2e/test_image.py runs it).

Registry images cannot be pulled everywhere the suite runs, but Debian's packages can be
installed. So, as root:

1. `docker.io` and `debootstrap` are installed from the OS packages when missing (as
   scripts/lib.sh installs Postgres);
2. `dockerd --iptables=false --bridge=none` is started with its own data root, exec root,
   pidfile and socket in a cache folder outside the repository (BACKORDER_DOCKER_DIR, by
   default /var/cache/backorder-test-docker), or the one already answering there is reused.
   It is left running for the next session, as Postgres and RabbitMQ are;
3. a Debian bookworm base with Python 3.11 (`python`, `python3`, venv) and this machine's CA
   bundle (so pip reaches the package index through whatever the machine trusts) is made with
   debootstrap once and imported; its tag carries a hash of the recipe and of the bundle, so
   it is rebuilt only when either changes;
4. the image is built from deploy/Dockerfile with `PYTHON_IMAGE` set to that base, by the
   classic builder (BuildKit would fetch the `# syntax=` frontend from a registry), from a
   context filtered by deploy/Dockerfile.dockerignore. Its layer cache keeps rebuilds short.

When no engine can be had (not Linux, not root and none answering, the packages cannot be
installed, dockerd exits), `EngineUnavailable` says why, and the image test fails with that
reason: the suite runs where `scripts/test` can install and start what it needs (root, the
OS packages), as it does for Postgres and RabbitMQ.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import io
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "deploy/Dockerfile"
DOCKERIGNORE = REPO_ROOT / "deploy" / "Dockerfile.dockerignore"
IMAGE_TAG = "backorder:image-test"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("BACKORDER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What deploy/Dockerfile expects of python:3.11-slim: `python` and `python3` on PATH with
# venv (build stage), groupadd/useradd (runtime stage; in every Debian base).
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
CA_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"
# Changing the recipe below changes the base tag, so old bases are never mistaken for new.
BASE_RECIPE = f"debootstrap minbase {DEBIAN_SUITE} {' '.join(BASE_PACKAGES)}; PIP_CERT; v1"


class EngineUnavailable(RuntimeError):
    """This environment cannot run a Docker engine (the reason is the message)."""


def _run(
    args: list[str], *, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def cache_dir() -> Path:
    configured = os.environ.get("BACKORDER_DOCKER_DIR")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/backorder-test-docker")
    return Path.home() / ".cache" / "backorder-test-docker"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One session at a time starts the engine and builds images (others wait, then reuse)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_apt_updated = False


def _apt_install(*packages: str) -> None:
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        _run(["apt-get", "update", "-qq"], timeout=600, env=env)
        _apt_updated = True
    done = _run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        timeout=1200,
        env=env,
    )
    if done.returncode != 0:
        raise EngineUnavailable(
            f"apt-get install {' '.join(packages)} failed:\n{_tail(done.stderr)}"
        )


def _ensure_commands(*commands_and_packages: tuple[str, str]) -> None:
    missing = [(c, p) for c, p in commands_and_packages if shutil.which(c) is None]
    if not missing:
        return
    names = ", ".join(c for c, _ in missing)
    if os.geteuid() != 0:
        raise EngineUnavailable(f"{names} not installed, and not root to install them")
    if shutil.which("apt-get") is None:
        raise EngineUnavailable(f"{names} not installed, and no apt-get to install them")
    _apt_install(*sorted({p for _, p in missing}))


@dataclass(frozen=True)
class Engine:
    """A Docker engine answering on `host` (a DOCKER_HOST value)."""

    host: str

    @property
    def env(self) -> dict[str, str]:
        # The classic builder: BuildKit would fetch the Dockerfile's `# syntax=` frontend image.
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def docker(
        self, *args: str, timeout: float = 120, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        if input is None:
            return _run(["docker", *args], timeout=timeout, env=self.env)
        done = subprocess.run(
            ["docker", *args],
            env=self.env,
            input=input,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        return subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )

    def check(self, *args: str, timeout: float = 120) -> str:
        done = self.docker(*args, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done.stdout

    def answers(self) -> bool:
        try:
            return (
                self.docker("version", "--format", "{{.Server.Version}}", timeout=20).returncode
                == 0
            )
        except subprocess.TimeoutExpired:
            return False

    def has_image(self, tag: str) -> bool:
        return self.docker("image", "inspect", tag, timeout=60).returncode == 0


def ensure_engine() -> Engine:
    """Our own dockerd, started if none answers on its socket (see the module docstring)."""
    if sys.platform != "linux":
        raise EngineUnavailable(f"Docker engines run on Linux, this is {sys.platform}")
    folder = cache_dir()
    engine = Engine(f"unix://{folder / 'docker.sock'}")
    if os.geteuid() != 0:
        # dockerd needs root here; a user may still have an engine of their own.
        theirs = Engine(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
        if shutil.which("docker") and theirs.answers():
            return theirs
        raise EngineUnavailable("not root, so no dockerd can be started, and none answers")
    with _locked(folder):
        if shutil.which("docker") and engine.answers():
            return engine
        _ensure_commands(("dockerd", "docker.io"), ("docker", "docker.io"))
        _start_dockerd(folder, engine)
    return engine


def _start_dockerd(folder: Path, engine: Engine, timeout: float = 90) -> None:
    pidfile = folder / "dockerd.pid"
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        # A dockerd of ours that no longer answers: stop it before starting another (only if
        # the pid is still that dockerd, not a process that got its number since).
        pid = int(pidfile.read_text().strip())
        if str(pidfile).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGTERM)
            time.sleep(5)
    pidfile.unlink(missing_ok=True)
    (folder / "docker.sock").unlink(missing_ok=True)
    log_path = folder / "dockerd.log"
    with log_path.open("ab") as log:
        log.write(f"--- started by the test suite at {time.ctime()}\n".encode())
        log.flush()
        process = subprocess.Popen(
            [
                "dockerd",
                "--iptables=false",
                "--bridge=none",
                f"--data-root={folder / 'data'}",
                f"--exec-root={folder / 'exec'}",
                f"--pidfile={pidfile}",
                f"--host={engine.host}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives this session, for the next one to reuse
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineUnavailable(
                f"dockerd exited {process.returncode}:\n"
                + _tail(log_path.read_text(errors="replace"))
            )
        if engine.answers():
            return
        time.sleep(0.5)
    process.terminate()
    raise EngineUnavailable(
        f"dockerd did not answer within {timeout} s:\n"
        + _tail(log_path.read_text(errors="replace"))
    )


def _ca_bundle() -> Path | None:
    """The CA bundle this machine's Python and pip trust."""
    paths = ssl.get_default_verify_paths()
    for candidate in (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        paths.cafile,
        paths.openssl_cafile,
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def base_tag() -> str:
    digest = hashlib.sha256(BASE_RECIPE.encode())
    bundle = _ca_bundle()
    if bundle is not None:
        digest.update(bundle.read_bytes())
    return f"backorder-test-base:{DEBIAN_SUITE}-python3.11-{digest.hexdigest()[:12]}"


def ensure_base_image(engine: Engine) -> str:
    """The debootstrapped Python base, made once and then found by `docker image inspect`."""
    tag = base_tag()
    folder = cache_dir()
    with _locked(folder):
        if engine.has_image(tag):
            return tag
        if os.geteuid() != 0:
            raise EngineUnavailable(f"no image {tag}, and debootstrap needs root to make it")
        _ensure_commands(("debootstrap", "debootstrap"))
        with tempfile.TemporaryDirectory(dir=folder, prefix="rootfs-") as work:
            rootfs = Path(work, "rootfs")
            done = _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    DEBIAN_SUITE,
                    str(rootfs),
                    DEBIAN_MIRROR,
                ],
                timeout=1800,
            )
            if done.returncode != 0:
                raise RuntimeError(f"debootstrap failed:\n{_tail(done.stdout + done.stderr, 30)}")
            bundle = _ca_bundle()
            if bundle is not None:
                shutil.copyfile(bundle, rootfs / CA_IN_IMAGE.lstrip("/"))
            for leftover in (
                "var/lib/apt/lists",
                "var/cache/apt",
                "usr/share/doc",
                "usr/share/man",
            ):
                shutil.rmtree(rootfs / leftover, ignore_errors=True)
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            imported = subprocess.run(
                [
                    "docker",
                    "import",
                    "--change",
                    f"ENV PIP_CERT={CA_IN_IMAGE}",
                    "--change",
                    f"ENV SSL_CERT_FILE={CA_IN_IMAGE}",
                    "--change",
                    'CMD ["python3"]',
                    "-",
                    tag,
                ],
                stdin=tar.stdout,
                env=engine.env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait() != 0 or imported.returncode != 0:
                raise RuntimeError(f"importing the base failed:\n{imported.stderr}")
    return tag


def _ignore_patterns() -> list[list[str]]:
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise NotImplementedError(f"exceptions in {DOCKERIGNORE.name} are not read here")
        patterns.append(line.strip("/").split("/"))
    return patterns


def _matches(parts: list[str], pattern: list[str]) -> bool:
    """Docker's .dockerignore matching of one path (split on /): `**` is any number of
    folders, other segments are shell patterns."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_matches(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], pattern[0])
        and _matches(parts[1:], pattern[1:])
    )


def build_context() -> bytes:
    """The repository as `docker build` with BuildKit would send it: a tar of the working
    tree without what deploy/Dockerfile.dockerignore leaves out (a matched folder is left
    out whole). The classic builder reads only a root .dockerignore, hence this."""
    patterns = _ignore_patterns()
    buffer = io.BytesIO()

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    # GNU, not PAX: docker reads the first 1 KiB of stdin to tell a tar from a Dockerfile,
    # and a PAX archive's first real header lies past it.
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for folder, dirs, files in os.walk(REPO_ROOT):
            base = Path(folder).relative_to(REPO_ROOT).parts
            dirs[:] = sorted(d for d in dirs if not any(_matches([*base, d], p) for p in patterns))
            for name in sorted(files):
                parts = [*base, name]
                if not any(_matches(parts, p) for p in patterns):
                    tar.add(Path(folder, name), "/".join(parts), filter=owned_by_root)
    return buffer.getvalue()


def build_image(engine: Engine, base: str) -> str:
    """deploy/Dockerfile on `base`; the build's RUN steps use the host network (the engine
    has no bridge) to reach the package index.

    The build stage is tagged too: the classic builder keeps a stage's layers only as long as
    an image names them, and its dependency layer is the one worth keeping between runs.
    Whatever an earlier run built and no tag names any more is pruned, so the cache folder
    stays bounded."""
    context = build_context()
    with _locked(cache_dir()):
        for target, tag in (("build", f"{IMAGE_TAG}-build-stage"), ("runtime", IMAGE_TAG)):
            done = engine.docker(
                "build",
                "--network=host",
                f"--file={DOCKERFILE}",
                f"--build-arg=PYTHON_IMAGE={base}",
                f"--target={target}",
                f"--tag={tag}",
                "-",
                input=context,
                timeout=1800,
            )
            if done.returncode != 0:
                raise RuntimeError(
                    f"docker build --target {target} failed:\n"
                    + _tail(done.stdout + done.stderr, 40)
                )
        engine.docker("image", "prune", "--force", timeout=300)
    return IMAGE_TAG
