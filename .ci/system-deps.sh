#!/usr/bin/env sh
# The Debian packages the tests need: mosquitto (broker + mosquitto_passwd) for the MQTT tests,
# openssl for the TLS test certificates, chromium and its driver for the control panel's browser
# tests (Selenium drives them; it downloads nothing). Installs what is missing (as root, or with
# sudo).
set -eu
missing=""
command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || missing="$missing mosquitto"
command -v mosquitto_pub >/dev/null 2>&1 || missing="$missing mosquitto-clients"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
test -x /usr/bin/chromium || missing="$missing chromium"
test -x /usr/bin/chromedriver || missing="$missing chromium-driver"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "the tests need:$missing — install them with your package manager" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq $missing >/dev/null
