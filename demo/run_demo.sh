#!/usr/bin/env bash
# The README demo: detect + recognise the faces in demo/query/group.jpg against demo/index.bin.
#
#   bash demo/run_demo.sh              # first run creates .venv and installs the project (needs PyPI)
#   PYTHON=/path/to/python bash demo/run_demo.sh    # use an environment that already has the project
#   bash demo/run_demo.sh --rebuild    # also rebuild demo/index.bin from demo/gallery first
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if [ ! -x .venv/bin/python ]; then
        echo "setting up .venv (one time) ..."
        python3 -m venv .venv
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -e .
    fi
    PY=.venv/bin/python
fi

if [ "${1:-}" = "--rebuild" ]; then
    "$PY" test_recognition.py --build_index demo/index.bin --img_dir demo/gallery
fi

OUT="${DEMO_OUTPUT:-output/demo}"
"$PY" test_recognition.py --det --rec --index demo/index.bin --input demo/query/group.jpg --output "$OUT"
echo "drawn result: $OUT/group.jpg   (boxes, names, similarities: $OUT/group.json)"
