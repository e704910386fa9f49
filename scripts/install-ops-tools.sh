#!/usr/bin/env bash
# The real parts the ops tests run: Prometheus + promtool, Alertmanager + amtool and
# headless Chromium, from Debian's packages. Installs what is missing (needs root and
# apt-get); does nothing when everything is there. Services are not started: the
# tests start their own on free loopback ports.
set -euo pipefail
need=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null \
  || need+=(prometheus-alertmanager)
command -v chromium >/dev/null || need+=(chromium)
fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ops tests need Debian's ${need[*]}: run as root with apt-get, or install them" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
# Packages must not start their services here (the tests start their own).
policy=/usr/sbin/policy-rc.d
created=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
fi
trap '[ -n "$created" ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
