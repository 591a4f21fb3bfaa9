#!/usr/bin/env bash
# Installs the system programs the test suites drive as real peers: mosquitto_pub/mosquitto_sub
# (Debian mosquitto-clients), headless Chromium (Debian chromium) and nats-server (Debian nats-server, the
# cluster tests' JetStream). Idempotent; a no-op when present.
# Tests that need a missing program skip with a message instead of failing, so a machine without
# apt (macOS, a non-root user) can still run everything else.
set -uo pipefail
need=()
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages for the tests: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || echo "warning: could not install ${need[*]}; tests that need them will be skipped"
else
  echo "note: ${need[*]} not installed (needs root and apt-get); tests that need them will be skipped"
fi
exit 0
