#!/usr/bin/env bash
# Install the Debian packages tracepay needs, only those that are missing.
#   scripts/install-system-packages.sh demo   -> the broker, nats-server (ledger ordering),
#                                               espeak-ng (spoken payments), PostgreSQL
#                                               (the gateway's shared database)
#   scripts/install-system-packages.sh test   -> also a virtual screen with software GL, Chromium,
#                                               a CJK font, and Node.js for the Node-RED test
set -euo pipefail

profile="${1:-demo}"
declare -A wanted=( [mosquitto]="/usr/sbin/mosquitto" )
wanted+=( [nats-server]="/usr/sbin/nats-server" )
wanted+=( [espeak-ng]="/usr/bin/espeak-ng" )
# The gateway's PostgreSQL backend (a gateway tier; the tests start a throw-away server).
wanted+=( [postgresql]="/usr/share/doc/postgresql" )
if [[ "$profile" == "test" ]]; then
    wanted+=(
        [xvfb]="/usr/bin/Xvfb"
        [chromium]="/usr/bin/chromium"
        [fonts-wqy-microhei]="/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
        [libgl1-mesa-dri]="/usr/lib/x86_64-linux-gnu/dri/swrast_dri.so"
        [libmtdev1]="/usr/lib/x86_64-linux-gnu/libmtdev.so.1"
        [nodejs]="/usr/bin/node"
        [npm]="/usr/bin/npm"
    )
fi

missing=()
for package in "${!wanted[@]}"; do
    if [[ ! -e "${wanted[$package]}" ]] && ! dpkg -s "$package" >/dev/null 2>&1; then
        missing+=("$package")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "installing Debian packages: ${missing[*]}"
sudo=""
if [[ "$(id -u)" != "0" ]]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
