"""`make package`: the prod stage as a SAM template + deployment zip, then cfn-lint on it.

    python -m infra.package [--stage prod] [--out build] [--no-lint]

Runs offline: Chalice needs a region name but no credentials (a fake region is set when
none is configured). Dependencies are resolved by Chalice once and cached in
`.chalice/deployments/`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.json"
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    if not (env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION")):
        env["AWS_DEFAULT_REGION"] = "us-east-1"
    return env


TEMPLATE_STAGE = "prod"  # the stage infra/template.json names; others are rendered from it


def stage_template(stage: str) -> dict[str, Any]:
    """infra/template.json for `stage`: every deployed stage gets the same WAF, throttling,
    gateway responses and alarms, attached to its own API Gateway stage."""

    def render(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [render(v) for v in value]
        if value == TEMPLATE_STAGE:
            return stage
        if isinstance(value, str):
            return value.replace(f"RestAPI{TEMPLATE_STAGE}Stage", f"RestAPI{stage}Stage").replace(
                f"/stages/{TEMPLATE_STAGE}", f"/stages/{stage}"
            )
        return value

    rendered: dict[str, Any] = render(json.loads(TEMPLATE.read_text()))
    return rendered


def package(out: Path, stage: str = "prod") -> Path:
    """Run `chalice package --merge-template` with the stage's template; return the SAM template."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("sam.json", "deployment.zip"):
        (out / stale).unlink(missing_ok=True)
    merge = out / f"template-{stage}.json"
    merge.write_text(json.dumps(stage_template(stage), indent=2))
    cmd = [
        str(BIN / "chalice"),
        "--project-dir",
        str(ROOT),
        "package",
        "--stage",
        stage,
        "--merge-template",
        str(merge),
        str(out),
    ]
    subprocess.run(cmd, check=True, cwd=ROOT, env=_env())
    add_bytecode(out / "deployment.zip")
    return out / "sam.json"


def add_bytecode(zip_path: Path) -> int:
    """Add a compiled `__pycache__/*.pyc` beside every `.py` in the deployment zip.

    Lambda's code directory is read-only, so without them every cold start compiles each
    module from source again (~60 ms for this app). They are unchecked-hash pycs (PEP 552):
    valid whatever the zip's timestamps, built by this interpreter, so the runtime's Python
    must be the same minor version (the package's runtime is taken from it). Returns how
    many were added.
    """
    import importlib.util
    import zipfile

    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(zip_path) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    added = 0
    tmp = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in members:
            if "__pycache__/" in info.filename:
                continue  # whatever a working tree held: possibly stale; ours replace them
            dst.writestr(info, data)
            if not info.filename.endswith(".py"):
                continue
            folder, _, name = info.filename.rpartition("/")
            pyc = f"{folder + '/' if folder else ''}__pycache__/{name[:-3]}.{tag}.pyc"
            try:
                code = compile(data, info.filename, "exec", dont_inherit=True)
            except SyntaxError:
                continue  # a file no import will load on this Python (e.g. a py2-only test)
            source_hash = importlib.util.source_hash(data)
            payload = importlib._bootstrap_external._code_to_hash_pyc(  # type: ignore[attr-defined]
                code, source_hash, checked=False
            )
            entry = zipfile.ZipInfo(pyc, date_time=info.date_time)
            entry.external_attr = info.external_attr
            dst.writestr(entry, bytes(payload), zipfile.ZIP_DEFLATED)
            added += 1
    tmp.replace(zip_path)
    return added


def lint(template: Path) -> subprocess.CompletedProcess[str]:
    """cfn-lint with warnings and errors (informational findings are not failures)."""
    cmd = [str(BIN / "cfn-lint"), "--format", "parseable", "--", str(template)]
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--no-lint", action="store_true")
    args = parser.parse_args(argv)
    sam = package(args.out, args.stage)
    print(f"packaged {sam} and {sam.parent / 'deployment.zip'}")
    if args.no_lint:
        return 0
    result = lint(sam)
    if result.stdout.strip() or result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        print("cfn-lint found problems", file=sys.stderr)
        return 1
    print("cfn-lint: no findings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
