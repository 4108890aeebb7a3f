#!/usr/bin/env bash
# Set up hwsim on a fresh Debian machine as root: apt packages, then torch (CPU build
# 2.13.0 first, so nothing pulls a CUDA build), then this package with its test extras.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
apt-get update -qq
apt-get install -y -qq iverilog dataset-fashion-mnist chromium >/dev/null
python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -qq python3-pip >/dev/null
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e '.[test]'
