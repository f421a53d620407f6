"""Makes the Lambda runtime image that `sam local` runs our functions in, without a registry.

For `Runtime: provided.al2023` SAM runs `public.ecr.aws/lambda/provided:al2023-rapid-<arch>`
(the base image plus its runtime interface emulator at /var/rapid/aws-lambda-rie). No image
registry is reachable here, so this script makes that image from files on this machine only:

- the runtime interface emulator that ships inside the aws-sam-cli wheel
  (samcli/local/rapid/aws-lambda-rie-<arch>), the binary SAM itself would add to the image;
- the glibc loader and libraries a host-built (glibc) bootstrap links against, taken from the
  Debian packages libc6 and libgcc-s1;
- busybox from the Debian package busybox-static as /bin/sh, mv, chmod, cp, ... (SAM's own
  Dockerfile for the rapid image RUNs `mv` and `chmod`, so the base tag works with it too);
- the CA bundle of the Debian package ca-certificates (the AWS SDK needs trust roots);
- the empty directories a Lambda image has (/var/task, /var/runtime, /opt, /tmp).

The root filesystem is streamed as a tar into `docker import` and tagged twice: the `-rapid-`
name SAM runs and the base name SAM would build it from. The image carries a label with a hash
of all its inputs (this script, the package versions, every file's content); when an image with
the same label exists nothing is done, so running this again is cheap and rebuilds only when an
input changed. Nothing is downloaded: a missing Debian package is installed by name with apt-get.

    python infra/sam_image.py            # make (or keep) the image for this host's architecture
    python infra/sam_image.py --print    # print the image name SAM will use, make nothing
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve()
LABEL = "org.fog-compute.sam-image.inputs"
REPOSITORY = "public.ecr.aws/lambda/provided"
RUNTIME_TAG = "al2023"
# Debian packages whose files go into the image, and the files of theirs we leave out.
PACKAGES = ("libc6", "libgcc-s1", "busybox-static", "ca-certificates")
SKIP_PREFIXES = ("/usr/share/",)
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BUSYBOX = "/bin/busybox"
# ELF interpreters, by Lambda architecture (Debian's path names; /lib and /lib64 link into /usr).
LOADERS = {"x86_64": "/lib64/ld-linux-x86-64.so.2", "arm64": "/lib/ld-linux-aarch64.so.1"}
# What the AWS base image sets, so that a bootstrap sees the same environment.
IMAGE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LANG": "en_US.UTF-8",
    "TZ": ":/etc/localtime",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
}
EMPTY_DIRS = ("var/task", "var/runtime", "var/rapid", "opt", "tmp", "etc", "root", "proc", "sys", "dev")
USRMERGE = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}


def lambda_architecture() -> str:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "x86_64"
    if machine in ("aarch64", "arm64"):
        return "arm64"
    sys.exit(f"sam_image: no Lambda architecture for this machine ({machine})")


def image_names(architecture: str) -> tuple[str, str]:
    """The image SAM runs and the base image SAM would build it from."""
    return (f"{REPOSITORY}:{RUNTIME_TAG}-rapid-{architecture}", f"{REPOSITORY}:{RUNTIME_TAG}-{architecture}")


def emulator(architecture: str) -> Path:
    try:
        import samcli
    except ImportError:
        sys.exit("sam_image: aws-sam-cli is not installed in this Python (run it with .venv/bin/python)")
    path = Path(samcli.__file__).parent / "local" / "rapid" / f"aws-lambda-rie-{architecture}"
    if not path.is_file():
        sys.exit(f"sam_image: the emulator is missing from aws-sam-cli: {path}")
    return path


def ensure_packages() -> None:
    """Installs, by name, the Debian packages the image is made of, when one is missing."""
    if shutil.which("dpkg-query") is None:
        sys.exit("sam_image: the image is made from Debian packages; this host has no dpkg (Debian or Ubuntu needed)")
    missing = [name for name in PACKAGES if not _installed(name)]
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        sys.exit(f"sam_image: needs the Debian packages {' '.join(missing)}: apt-get install {' '.join(missing)}")
    print(f"sam_image: installing the Debian packages {' '.join(missing)}", file=sys.stderr, flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
    if subprocess.call(["apt-get", "install", "-y", "-qq", *missing], **quiet) != 0:
        subprocess.check_call(["apt-get", "update", "-qq"], **quiet)
        subprocess.check_call(["apt-get", "install", "-y", "-qq", *missing], **quiet)


def _installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return result.stdout.endswith("installed")


def _package_version(package: str) -> str:
    return subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True
    ).stdout


def _package_files(package: str) -> list[str]:
    listed = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True, check=True).stdout
    return [line for line in listed.splitlines() if line.startswith("/") and not line.startswith(SKIP_PREFIXES)]


def _image_path(host_path: str) -> str:
    """Where a host file goes in the image: its directory resolved (usr-merged), its name kept."""
    directory, name = os.path.split(host_path)
    return os.path.join(os.path.realpath(directory), name).lstrip("/")


class RootFs:
    """The image's files as tar members, in a fixed order and with fixed times."""

    def __init__(self) -> None:
        self.members: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}

    def _info(self, path: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(path)
        info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
        return info

    def directory(self, path: str, mode: int = 0o755) -> None:
        parts = Path(path).parts
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if prefix not in self.members:
                self.members[prefix] = (self._info(prefix, tarfile.DIRTYPE, mode), None)
        if path == "tmp":
            self.members[path][0].mode = 0o1777

    def symlink(self, path: str, target: str) -> None:
        self.directory(os.path.dirname(path)) if os.path.dirname(path) else None
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.members[path] = (info, None)

    def file(self, path: str, content: bytes, mode: int = 0o644) -> None:
        if os.path.dirname(path):
            self.directory(os.path.dirname(path))
        info = self._info(path, tarfile.REGTYPE, mode)
        info.size = len(content)
        self.members[path] = (info, content)

    def host_file(self, host_path: str, image_path: str | None = None) -> None:
        """A host file (or symlink) at the same place in the image."""
        path = image_path or _image_path(host_path)
        if os.path.islink(host_path):
            self.symlink(path, os.readlink(host_path))
        elif os.path.isfile(host_path):
            self.file(path, Path(host_path).read_bytes(), os.stat(host_path).st_mode & 0o7777)

    def digest(self) -> str:
        sha = hashlib.sha256()
        for path in sorted(self.members):
            info, content = self.members[path]
            sha.update(f"{path}\0{info.type!r}\0{info.mode:o}\0{info.linkname}\0".encode())
            sha.update(hashlib.sha256(content or b"").digest())
        return sha.hexdigest()

    def tar(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
            for path in sorted(self.members):
                info, content = self.members[path]
                archive.addfile(info, io.BytesIO(content) if content is not None else None)
        return buffer.getvalue()


def root_filesystem(architecture: str) -> RootFs:
    root = RootFs()
    for link, target in USRMERGE.items():
        root.directory(target)
        root.symlink(link, target)
    for directory in EMPTY_DIRS:
        root.directory(directory)
    for package in PACKAGES:
        for path in _package_files(package):
            if not os.path.isdir(path) or os.path.islink(path):
                root.host_file(path)
    loader = LOADERS[architecture]
    if os.path.lexists(loader):
        root.host_file(loader)
    root.host_file(CA_BUNDLE)  # made by update-ca-certificates from the package's certificates
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    busybox_path = _image_path(BUSYBOX)
    for applet in applets:
        path = f"usr/bin/{applet}"
        if path != busybox_path and path not in root.members:
            root.symlink(path, "busybox")
    root.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    root.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    root.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
    root.file("etc/os-release", b'NAME="Fog Compute local Lambda runtime"\nID=fog-compute-lambda-local\n')
    root.file("var/rapid/aws-lambda-rie", emulator(architecture).read_bytes(), 0o755)
    return root


def _docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, **kwargs)


def _image_id(image: str) -> str | None:
    result = _docker("image", "inspect", "--format", "{{.Id}}", image)
    return result.stdout.strip() if result.returncode == 0 else None


def existing_label(image: str) -> str | None:
    result = _docker("image", "inspect", "--format", "{{json .Config.Labels}}", image)
    if result.returncode != 0:
        return None
    return (json.loads(result.stdout) or {}).get(LABEL)


def make_image(architecture: str, force: bool = False) -> str:
    rapid, base = image_names(architecture)
    ensure_packages()
    root = root_filesystem(architecture)
    inputs = hashlib.sha256(
        "\n".join(
            [SCRIPT.read_text(), architecture, root.digest(), *(f"{p}={_package_version(p)}" for p in PACKAGES)]
        ).encode()
    ).hexdigest()[:32]
    # Both names on the one imported image (`sam local --force-image-build` re-makes the rapid one).
    current = existing_label(base) == inputs and _image_id(rapid) == _image_id(base)
    if not force and current:
        print(f"sam_image: {rapid} is up to date ({inputs[:12]})", file=sys.stderr)
        return rapid
    previous = {_image_id(rapid), _image_id(base)} - {None}
    changes = [f"LABEL {LABEL}={inputs}", "WORKDIR /var/task", 'ENTRYPOINT ["/var/rapid/aws-lambda-rie"]']
    changes += [f"ENV {key}={value}" for key, value in IMAGE_ENV.items()]
    command = ["docker", "import", "--platform", f"linux/{'amd64' if architecture == 'x86_64' else 'arm64'}"]
    for change in changes:
        command += ["--change", change]
    imported = subprocess.run([*command, "-", rapid], input=root.tar(), capture_output=True, check=False)
    if imported.returncode != 0:
        sys.exit(f"sam_image: docker import failed: {imported.stderr.decode().strip()}")
    tagged = _docker("tag", rapid, base)
    if tagged.returncode != 0:
        sys.exit(f"sam_image: docker tag failed: {tagged.stderr.strip()}")
    for image_id in previous - {_image_id(rapid)}:
        _docker("image", "rm", image_id)  # the replaced image, unless a container still uses it
    print(f"sam_image: made {rapid} and {base} ({inputs[:12]})", file=sys.stderr)
    return rapid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", choices=sorted(LOADERS), default=lambda_architecture())
    parser.add_argument("--force", action="store_true", help="make the image even when it is up to date")
    parser.add_argument("--print", action="store_true", help="print the image name, make nothing")
    args = parser.parse_args()
    if args.print:
        print(image_names(args.architecture)[0])
        return 0
    if args.architecture != lambda_architecture():
        sys.exit("sam_image: the image is made from this host's packages, so only for its own architecture")
    print(make_image(args.architecture, force=args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
