#!/usr/bin/env bash
# Install the Debian packages tracepay needs, only those that are missing.
#   scripts/install-system-packages.sh demo   -> the broker
#   scripts/install-system-packages.sh test   -> the broker, a virtual screen, a browser, fonts
set -euo pipefail

profile="${1:-demo}"
declare -A wanted=( [mosquitto]="/usr/sbin/mosquitto" )
if [[ "$profile" == "test" ]]; then
    wanted+=(
        [xvfb]="/usr/bin/Xvfb"
        [xdotool]="/usr/bin/xdotool"
        [x11-apps]="/usr/bin/xwd"
        [chromium]="/usr/bin/chromium"
        [fonts-noto-cjk]="/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
        [libmtdev1]="/usr/lib/x86_64-linux-gnu/libmtdev.so.1"
        [libgl1-mesa-dri]="/usr/lib/x86_64-linux-gnu/dri/swrast_dri.so"
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
