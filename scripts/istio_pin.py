#!/usr/bin/env python3
"""Pin every shipped meshsight WasmPlugin to the image `make oci` builds from this tree.

Istio checks a WasmPlugin's `sha256` against the manifest digest of an `oci://` image, so each
meshsight plugin under envoy-config/istio/ (label app.kubernetes.io/part-of: meshsight, url
`oci://.../meshsight:<tag>`) carries the digest of the image of target/.../meshsight.wasm. The
.wasm is reproducible (same bytes from any clone path or CARGO_HOME: the Makefile's
--remap-path-prefix) and so is the image (scripts/oci_image.py: no timestamps), so the digest is
a function of the source tree and the Rust toolchain. Any change to the module's code changes it.

The toolchain the pins were made with is recorded next to them (envoy-config/istio/PINNED-WITH,
`rustc -V`). Another rustc emits other bytes, so where the build's rustc differs from the
recorded one the digests cannot be compared: --check then says so, names both compilers and
checks only that every plugin carries a well-formed digest; with the recorded rustc it checks
the digest itself.

Usage:
  istio_pin.py --wasm WASM            write the digest into every plugin (`make istio-pin`)
  istio_pin.py --wasm WASM --check    fail, naming each file and the expected digest, when a
                                      plugin's sha256 differs (`make oci`, part of `make test`)
  istio_pin.py --wasm WASM --self-test
                                      --check, then prove on a copy that an altered or a missing
                                      digest is refused
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oci_image import manifest_digest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PINNED_WITH = "PINNED-WITH"
ISTIO_DIR = ROOT / "envoy-config" / "istio"
# A WasmPlugin's `url:` (its `sha256:` follows at the same indent), or the `uri:` of an
# EnvoyFilter extension config's `code.remote.http_uri` (its `sha256:` belongs to `remote`, two
# columns left, and follows because `uri` is the last key of `http_uri`).
URL_LINE = re.compile(r"^(?P<indent>[ \t]*)(?P<key>url|uri):[ \t]*(?P<url>oci://\S+)[ \t]*$")
SHA_LINE = re.compile(r"^(?P<indent>[ \t]*)sha256:.*$")


def pinned_plugins(directory: Path, module: str) -> list[tuple[Path, str, str | None]]:
    """(file, plugin name, its sha256 or None) for each meshsight WasmPlugin of `module`'s image."""
    found = []
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict):
                continue
            labels = (doc.get("metadata") or {}).get("labels") or {}
            if labels.get("app.kubernetes.io/part-of") != "meshsight":
                continue
            name = doc["metadata"].get("name", "?")
            if doc.get("kind") == "WasmPlugin":
                url = (doc.get("spec") or {}).get("url", "")
                if is_image_of(url, module):
                    found.append((path, f"WasmPlugin {name}", (doc.get("spec") or {}).get("sha256")))
            elif doc.get("kind") == "EnvoyFilter":
                for patch in (doc.get("spec") or {}).get("configPatches") or []:
                    config = (((patch.get("patch") or {}).get("value") or {}).get("typed_config") or {}).get("config") or {}
                    remote = ((config.get("vm_config") or {}).get("code") or {}).get("remote") or {}
                    if is_image_of((remote.get("http_uri") or {}).get("uri", ""), module):
                        found.append((path, f"EnvoyFilter {name}", remote.get("sha256")))
    return found


def is_image_of(url: str, module: str) -> bool:
    """Whether `url` is an oci:// reference to the repository named after `module`."""
    if not url.startswith("oci://"):
        return False
    repository = url[len("oci://"):].split("@")[0].rsplit(":", 1)[0]
    return repository.rsplit("/", 1)[-1] == module


def pin_text(text: str, module: str, digest_hex: str) -> str:
    """`text` with a `sha256: <digest_hex>` line right after each url line of `module`'s image."""
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        match = URL_LINE.match(line)
        if not match or not is_image_of(match["url"], module):
            continue
        indent = match["indent"] if match["key"] == "url" else match["indent"][:-2]
        if index < len(lines):
            following = SHA_LINE.match(lines[index])
            if following and following["indent"] == indent:
                index += 1
        out.append(f"{indent}sha256: {digest_hex}")
    return "\n".join(out)


def rustc_version() -> str:
    """`rustc -V` of the toolchain on PATH (the one the Makefile builds with)."""
    return subprocess.run(["rustc", "-V"], check=True, capture_output=True, text=True).stdout.strip()


def pinned_with(directory: Path) -> str | None:
    """The rustc the pins under `directory` were made with, if recorded."""
    record = directory / PINNED_WITH
    return record.read_text().strip() if record.exists() else None


def pin(directory: Path, wasm: Path) -> int:
    (directory / PINNED_WITH).write_text(rustc_version() + "\n")
    module = wasm.stem.replace("_", "-")
    digest_hex = manifest_digest(wasm).split(":", 1)[1]
    changed = []
    for path in sorted({path for path, _, _ in pinned_plugins(directory, module)}):
        text = path.read_text()
        new = pin_text(text, module, digest_hex)
        if new != text:
            path.write_text(new)
            changed.append(path)
    status = check(directory, wasm)
    if status == 0:
        print(f"istio-pin: sha256 {digest_hex} ({len(changed)} file(s) changed)")
    return status


def check(directory: Path, wasm: Path) -> int:
    """0 when every plugin carries the digest of `wasm`'s image (or, built by another rustc than
    the pins were made with, a well-formed digest); else print why and return 1."""
    recorded, current = pinned_with(directory), rustc_version()
    if recorded is not None and recorded != current:
        print(
            f"istio-pin check: the pins were made with {recorded}, this build used {current}: "
            "other compilers emit other bytes, so the digest cannot be compared here "
            "(re-pin with make istio-pin under the recorded toolchain); checking the digests' form only"
        )
        problems = malformed_pins(directory, wasm)
    else:
        problems = stale_pins(directory, wasm)
    for problem in problems:
        print(f"FAIL {problem}")
    return 1 if problems else 0


def stale_pins(directory: Path, wasm: Path) -> list[str]:
    """What is wrong with the pins under `directory`; prints the digest when nothing is."""
    module = wasm.stem.replace("_", "-")
    digest_hex = manifest_digest(wasm).split(":", 1)[1]
    plugins = pinned_plugins(directory, module)
    problems = []
    if not plugins:
        problems.append(f"{directory}: no meshsight WasmPlugin with an oci:// url of the {module} image")
    for path, name, sha in plugins:
        if sha != digest_hex:
            shown = shown_path(path)
            now = f"sha256 {sha}" if sha else "no sha256"
            problems.append(
                f"{shown}: {name} has {now}, but the image `make oci` builds from this "
                f"tree ({wasm.name}) has manifest digest {digest_hex}: run make istio-pin"
            )
    if not problems:
        print(f"istio-pin check: {len(plugins)} plugin(s) pinned to sha256 {digest_hex}, the image of this tree")
    return problems


def malformed_pins(directory: Path, wasm: Path) -> list[str]:
    """Plugins without a sha256 of 64 lowercase hex digits."""
    module = wasm.stem.replace("_", "-")
    plugins = pinned_plugins(directory, module)
    problems = [] if plugins else [f"{directory}: no meshsight WasmPlugin with an oci:// url of the {module} image"]
    for path, name, sha in plugins:
        if not (sha and re.fullmatch(r"[0-9a-f]{64}", sha)):
            problems.append(f"{shown_path(path)}: {name} has no well-formed sha256 ({sha!r}): run make istio-pin")
    return problems


def shown_path(path: Path) -> str:
    """`path` relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def self_test(wasm: Path) -> int:
    """The real folder passes; on a copy pinned to this build, one digest altered, or removed,
    is refused."""
    status = check(ISTIO_DIR, wasm)
    if status != 0:
        return status
    failures = 0
    digest_hex = manifest_digest(wasm).split(":", 1)[1]
    wrong = ("0" if digest_hex[0] != "0" else "1") + digest_hex[1:]
    for label, old, new in (
        ("an altered", f"sha256: {digest_hex}", f"sha256: {wrong}"),
        ("a removed", f"  sha256: {digest_hex}\n", ""),
    ):
        with tempfile.TemporaryDirectory(prefix="istio-pin-") as tmp:
            copy = Path(tmp) / "istio"
            shutil.copytree(ISTIO_DIR, copy)
            module = wasm.stem.replace("_", "-")
            for path in {path for path, _, _ in pinned_plugins(copy, module)}:
                path.write_text(pin_text(path.read_text(), module, digest_hex))
            target = copy / "meshsight-wasmplugin.yaml"
            text = target.read_text()
            if old not in text:
                print(f"FAIL self-test: {target.name} does not contain {old.strip()!r}")
                failures += 1
                continue
            target.write_text(text.replace(old, new, 1))
            problems = stale_pins(copy, wasm)
            if not problems:
                print(f"FAIL self-test: {label} digest in {target.name} was accepted")
                failures += 1
            else:
                print(f"ok   self-test: {label} digest in {target.name} is refused: {problems[0]}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wasm", type=Path, required=True, help="the release meshsight.wasm")
    parser.add_argument("--dir", type=Path, default=ISTIO_DIR, help="default: envoy-config/istio")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test(args.wasm)
    if args.check:
        return check(args.dir, args.wasm)
    return pin(args.dir, args.wasm)


if __name__ == "__main__":
    sys.exit(main())
