"""Image fixtures: a Python base image made here, and a real registry on loopback.

These machines have no Docker engine and cannot pull from a registry on the internet
(see shared/reference/containers-here.md), so the base image is made from Debian's
packages with mmdebstrap and built with Buildah, and the registry is Debian's
docker-registry. Use them by importing the fixtures into a test module (and naming them
in its `__all__`, so the imports count as used):

    from images import base_image, image_registry, image_registry_with_login, image_tools

`base_image` is the name to give `base_image:` of build_docker_image; `image_registry`
(and `image_registry_with_login`, which refuses pushes without its username and
password) has `host` for image names and `tags(repository)`; `run_in_image` runs a
command in an image as pushed; `buildah(...)` runs Buildah and fails the test on error.

The base image stands in for `python:3.11-slim`: Debian's python3 (3.11), pip, `python`
on the PATH, pip free to install into the system (no EXTERNALLY-MANAGED), and this
machine's CA bundle, so pip inside a build reaches the package index this machine reaches.
The root filesystem tarball is cached (keyed by what goes in it, refreshed weekly) under
$SKYRUN_TEST_CACHE, else $XDG_CACHE_HOME/skyrun-test, else ~/.cache/skyrun-test; the
image stays in Buildah's storage, so a rerun costs nothing. A first run takes ~45-75 s.

Buildah runs with BUILDAH_ISOLATION=chroot (set for the session when unset): its default
isolation cannot start RUN steps inside a container. Buildah 1.28 (Debian 12) ignores
STORAGE_DRIVER; its storage keeps the driver it was first made with (overlay, on these
machines, which works). Without the tools the tests are skipped locally and fail when
CI is set.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from processes import free_port, stop, wait_for

BASE_IMAGE = "localhost/skyrun-test-base:bookworm"
BASE_PACKAGES = ("python3", "python3-pip", "python3-venv", "python-is-python3", "ca-certificates")
MMDEBSTRAP_ARGS = (
    "--variant=apt",
    '--aptopt=APT::Install-Recommends "false"',
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    f"--include={','.join(BASE_PACKAGES)}",
    # Like python:3.11-slim, the image's pip installs into its Python.
    '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
    "bookworm",
)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
IMAGE_ENV_DEFAULTS = {"BUILDAH_ISOLATION": "chroot"}
TOOLS = {"buildah": "buildah", "mmdebstrap": "mmdebstrap", "docker-registry": "docker-registry"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def buildah(
    *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `buildah ARGS`, output captured; on failure (with check) fail with its output."""
    result = subprocess.run(
        ["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"buildah {' '.join(args)} exited with {result.returncode}:\n{result.stderr}")
    return result


def run_in_image(
    image: str,
    *command: str,
    pull: bool = True,
    env: dict[str, str] | None = None,
    workdir: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `command` in a working container of `image`, then remove the container.

    Args:
        image: The image; with `pull`, fetched from its registry first (plain HTTP
            allowed), so what runs is what was pushed, not the local copy.
        command: The command and its arguments.
        pull: False to use the image in local storage as it is.
        env: Variables for the command (e.g. SKYRUN_API_URL); the host's network is shared,
            so a server on 127.0.0.1 is reachable.
        workdir: The working directory; default the image's WORKDIR.
    """
    pulling = ["--tls-verify=false", "--pull-always"] if pull else ["--pull-never"]
    container = buildah("from", *pulling, image).stdout.strip()
    try:
        options = ["--workingdir", workdir] if workdir else []
        for name, value in (env or {}).items():
            options += ["--env", f"{name}={value}"]
        return buildah("run", *options, container, "--", *command, check=False)
    finally:
        buildah("rm", container, check=False)


@pytest.fixture(scope="session")
def image_tools() -> Iterator[None]:
    """Buildah, mmdebstrap and docker-registry are here (skip locally, fail in CI), and
    Buildah's environment works in a container for the whole session."""
    missing = [package for package, command in TOOLS.items() if shutil.which(command) is None]
    if missing:
        message = f"image tests need `apt-get install {' '.join(missing)}`"
        if in_ci():
            pytest.fail(message + " (CI is set, so they must run: .ci/run installs them)")
        pytest.skip(message)
    patch = pytest.MonkeyPatch()
    for name, value in IMAGE_ENV_DEFAULTS.items():
        if not os.environ.get(name):
            patch.setenv(name, value)
    yield
    patch.undo()


def cache_dir() -> Path:
    if os.environ.get("SKYRUN_TEST_CACHE"):
        return Path(os.environ["SKYRUN_TEST_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "skyrun-test"


def base_key(today: datetime.date | None = None) -> str:
    """What the base image is made of (packages, options, host CAs) and this ISO week."""
    digest = hashlib.sha256(json.dumps(MMDEBSTRAP_ARGS).encode())
    digest.update(HOST_CA_BUNDLE.read_bytes())
    year, week, _ = (today or datetime.date.today()).isocalendar()
    return f"{digest.hexdigest()[:12]}-{year}w{week:02d}"


def _rootfs(directory: Path, key: str) -> Path:
    tarball = directory / f"rootfs-{key}.tar"
    if tarball.is_file():
        return tarball
    # mmdebstrap picks its output's format by the name's ending: this one must end in .tar.
    partial = directory / f"partial-{key}.tar"
    partial.unlink(missing_ok=True)
    result = subprocess.run(
        ["mmdebstrap", *MMDEBSTRAP_ARGS, str(partial)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"mmdebstrap could not make the base root filesystem:\n{result.stderr[-3000:]}")
    for old in directory.glob("rootfs-*.tar"):
        old.unlink()
    partial.rename(tarball)
    return tarball


def ensure_base_image() -> str:
    """BASE_IMAGE, made now unless Buildah already holds the one of this key."""
    key = base_key()
    keyed = f"{BASE_IMAGE}-{key}"
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "base.lock", "w") as lock:
        # One maker at a time (pytest-xdist workers, or two checkouts on one machine).
        fcntl.flock(lock, fcntl.LOCK_EX)
        if buildah("inspect", "--type", "image", keyed, check=False).returncode != 0:
            tarball = _rootfs(directory, key)
            with tempfile.TemporaryDirectory(prefix="skyrun-base-") as context:
                rootfs = Path(context, "rootfs.tar")
                try:
                    os.link(tarball, rootfs)  # ~200 MB: linked when on the same filesystem
                except OSError:
                    shutil.copy(tarball, rootfs)
                shutil.copy(HOST_CA_BUNDLE, Path(context, "host-ca.crt"))
                Path(context, "Dockerfile").write_text(
                    "FROM scratch\nADD rootfs.tar /\n"
                    "COPY host-ca.crt /etc/ssl/certs/ca-certificates.crt\n"
                    'CMD ["/bin/bash"]\n'
                )
                buildah("build", "-t", keyed, context)
        buildah("tag", keyed, BASE_IMAGE)
    return BASE_IMAGE


@pytest.fixture(scope="session")
def base_image(image_tools: None) -> str:
    """The name of a local Python 3.11 base image (`localhost/skyrun-test-base:bookworm`)."""
    return ensure_base_image()


@dataclass
class Registry:
    """A docker-registry serving plain HTTP on loopback (asking for a login when `username`)."""

    host: str  # "127.0.0.1:PORT", the first part of image names pushed to it
    username: str | None = None
    password: str | None = None

    def tags(self, repository: str) -> list[str]:
        """The tags of `repository` (`[]` when it has none)."""
        auth = (self.username, self.password or "") if self.username else None
        response = httpx.get(f"http://{self.host}/v2/{repository}/tags/list", auth=auth, timeout=10)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])


def _bcrypt(password: str) -> str:
    # docker-registry reads bcrypt htpasswd files only; glibc's crypt makes bcrypt hashes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt  # the standard library's until Python 3.13
        except ImportError:
            pytest.skip("a registry with a login needs the crypt module (Python < 3.13)")
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


def _serve_registry(root: Path, username: str | None, password: str | None) -> Iterator[Registry]:
    port = free_port()
    auth = ""
    if username and password:
        (root / "htpasswd").write_text(f"{username}:{_bcrypt(password)}\n")
        auth = f"auth:\n  htpasswd:\n    realm: skyrun-test\n    path: {root / 'htpasswd'}\n"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    log = open(root / "registry.log", "w")  # noqa: SIM115 (closed after the process stops)
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
    )

    def answers() -> bool | None:
        if process.poll() is not None:
            pytest.fail(f"docker-registry exited: {(root / 'registry.log').read_text()}")
        try:
            # 401 is an answer too: that registry asks for a login.
            status = httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code
        except httpx.HTTPError:
            return None
        return status in (200, 401) or None

    wait_for(answers, timeout=30, what="docker-registry to answer")
    try:
        yield Registry(host=f"127.0.0.1:{port}", username=username, password=password)
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="session")
def image_registry(
    image_tools: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """A real registry for the session; push to `f"{registry.host}/name:tag"` with TLS off."""
    yield from _serve_registry(tmp_path_factory.mktemp("registry"), None, None)


@pytest.fixture(scope="session")
def image_registry_with_login(
    image_tools: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """A registry that refuses pushes without its `username` and `password` (TLS off)."""
    root = tmp_path_factory.mktemp("registry-login")
    yield from _serve_registry(root, "skyrun-ci", "s3cret-pass")
