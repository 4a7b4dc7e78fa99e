"""Fails when a generated client left out an operation or a schema of
openapi.yaml: every operationId must have its Python module and its
TypeScript `operations` entry, every schema but a plain scalar its Python model
and every schema its TypeScript type.

    python check_generated.py OPENAPI_YAML PYTHON_PACKAGE_DIR TYPESCRIPT_D_TS
"""

import re
import sys
from pathlib import Path

from ruamel.yaml import YAML


SCALARS = {"string", "integer", "number", "boolean"}


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def main(spec_path: str, python_dir: str, typescript_file: str) -> int:
    spec = YAML(typ="safe").load(Path(spec_path))
    operations = [
        operation["operationId"]
        for item in spec["paths"].values()
        for method, operation in item.items()
        if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    ]
    schemas = spec["components"]["schemas"]
    python = Path(python_dir)
    typescript = Path(typescript_file).read_text()
    missing = []
    for operation in operations:
        if not list(python.glob(f"api/*/{snake(operation)}.py")):
            missing.append(f"python: operation {operation}")
        if not re.search(rf"^    {operation}: {{$", typescript, re.MULTILINE):
            missing.append(f"typescript: operation {operation}")
    for name, schema in schemas.items():
        # Python models exist for everything but plain scalars.
        has_model = "enum" in schema or schema.get("type") not in SCALARS
        if has_model and not (python / "models" / f"{snake(name)}.py").exists():
            missing.append(f"python: schema {name}")
        if not re.search(rf"^        {name}: ", typescript, re.MULTILINE):
            missing.append(f"typescript: schema {name}")
    for item in missing:
        print(f"error: generated client lacks {item}", file=sys.stderr)
    if not missing:
        print(f"both clients have all {len(operations)} operations and {len(schemas)} schemas")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
