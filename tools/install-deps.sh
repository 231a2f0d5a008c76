#!/usr/bin/env bash
# Installs the Debian packages idgraph builds against, when they are missing:
# liblmdb-dev (the storage engine), zlib1g-dev (.gz archives), libedit-dev (the shell's line editing),
# pkg-config, python3 (the conformance script).
set -euo pipefail
need=()
for pkg in liblmdb-dev zlib1g-dev libedit-dev pkg-config python3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing ${need[*]} ..." >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
