#!/usr/bin/env python3
"""Check envoy-config/docker-compose.yaml without a Docker engine.

1. Every bind-mount source (after `${VAR:-default}` expansion, relative to the compose file's
   folder) exists.
2. The Envoy service's config, as the container sees it, is accepted by the real Envoy binary of
   the image's version in `--mode validate`: the config file it mounts is copied with every
   container mount path replaced by its host source, so the .wasm files the config names are the
   ones Docker would mount (Envoy's validate mode loads them).

Usage: check_docker_compose.py [--compose FILE] [--venv DIR]
The environment must hold the same MESHSIGHT_* variables `make docker-run` passes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(text: str) -> str:
    """Expands ${VAR} and ${VAR:-default} as Docker Compose does."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        current = os.environ.get(name, "")
        if current:
            return current
        if default is None:
            raise SystemExit(f"docker-compose: ${{{name}}} is not set and has no default")
        return default

    return VAR.sub(value, text)


def mounts(service: dict, base: Path) -> list[tuple[Path, str]]:
    """(host source, container target) of each bind mount of a service."""
    result = []
    for volume in service.get("volumes", []):
        if not isinstance(volume, str):
            raise SystemExit(f"docker-compose: only short volume syntax is checked, got {volume!r}")
        parts = expand(volume).split(":")
        if len(parts) < 2:
            raise SystemExit(f"docker-compose: {volume!r} is not a bind mount")
        source = Path(parts[0])
        if not source.is_absolute():
            source = (base / source).resolve()
        result.append((source, parts[1]))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose", default="envoy-config/docker-compose.yaml")
    parser.add_argument("--venv", default=".venv", help="folder holding envoy-<version>/bin/envoy")
    args = parser.parse_args()

    compose_path = Path(args.compose).resolve()
    base = compose_path.parent
    compose = yaml.safe_load(compose_path.read_text())
    services = compose.get("services") or {}
    failures = []

    all_mounts = {}
    for name, service in services.items():
        all_mounts[name] = mounts(service, base)
        for source, target in all_mounts[name]:
            if not source.exists():
                failures.append(f"service {name}: mount source {source} (-> {target}) does not exist")
            else:
                print(f"ok   {name}: {source} -> {target}")

    envoy_services = [n for n, s in services.items() if str(s.get("image", "")).startswith("envoyproxy/envoy:")]
    if len(envoy_services) != 1:
        failures.append(f"expected one envoyproxy/envoy service, found {envoy_services}")
    else:
        name = envoy_services[0]
        service = services[name]
        tag = service["image"].split(":", 1)[1]
        match = re.fullmatch(r"v(\d+\.\d+\.\d+)", tag)
        if not match:
            failures.append(f"service {name}: image tag {tag!r} is not vX.Y.Z")
        else:
            version = match.group(1)
            envoy = Path(args.venv) / f"envoy-{version}" / "bin" / "envoy"
            command = [str(c) for c in service.get("command", [])]
            config_target = command[command.index("-c") + 1] if "-c" in command else None
            host_config = next(
                (src for src, dst in all_mounts[name] if dst == config_target), None
            )
            if not envoy.exists():
                failures.append(f"{envoy} missing: run `make envoy ENVOY_VERSION={version}`")
            elif host_config is None or not host_config.is_file():
                failures.append(f"service {name}: the config -c {config_target} is not a mounted file")
            else:
                text = host_config.read_text()
                # Longest container paths first, so nested mounts map correctly.
                for source, target in sorted(all_mounts[name], key=lambda m: -len(m[1])):
                    text = text.replace(target, str(source))
                with tempfile.TemporaryDirectory() as tmp:
                    mapped = Path(tmp) / "envoy.yaml"
                    mapped.write_text(text)
                    run = subprocess.run(
                        [str(envoy), "--mode", "validate", "-c", str(mapped), "--disable-hot-restart"],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                if run.returncode != 0:
                    failures.append(
                        f"envoy {version} --mode validate refused {host_config}:\n{run.stdout}{run.stderr}"
                    )
                else:
                    print(f"ok   {name}: Envoy {version} --mode validate accepts {host_config} as mounted")

    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    print(f"docker-check: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
