#!/usr/bin/env bash
# Creates (or reuses) the virtualenv with MSAL for Python that the tests and benchmarks run,
# and prints the path of its python. Used by .ci/run and, when the tests find no virtualenv,
# by the tests themselves, so `cargo test` works on a fresh machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${CONSENTRY_PYTHON_VENV:-"$here/../../target/python-venv"}
python=${PYTHON:-python3}
if ! "$venv/bin/python" -c 'import msal' >/dev/null 2>&1; then
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
fi
echo "$(cd "$venv" && pwd)/bin/python"
