#!/usr/bin/env bash
# Creates (or reuses) the virtualenv with the Python clients the tests and benchmarks run
# (MSAL, the Standard Webhooks reference library), and prints the path of its python. Used
# by .ci/run and, when the tests find no virtualenv, by the tests themselves, so `cargo test`
# works on a fresh machine. requirements.txt is installed again whenever it changes (a copy
# of the installed one is kept in the virtualenv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${CONSENTRY_PYTHON_VENV:-"$here/../../target/python-venv"}
python=${PYTHON:-python3}
requirements="$here/requirements.txt"
stamp="$venv/consentry-requirements.txt"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" >&2
fi
if ! cmp -s "$requirements" "$stamp"; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
  cp "$requirements" "$stamp"
fi
echo "$(cd "$venv" && pwd)/bin/python"
