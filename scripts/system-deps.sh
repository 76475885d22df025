#!/usr/bin/env bash
# Install the system packages drtool's demo and tests need, only when they are missing.
set -euo pipefail

need=()
have_pg_bin() {
  command -v "$1" >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/$1" >/dev/null
}
for tool in initdb pg_ctl pg_dump pg_restore pg_dumpall; do
  have_pg_bin "$tool" || { need+=(postgresql); break; }
done
command -v age >/dev/null 2>&1 || need+=(age)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
# The runbooks' own commands (tests/integration/test_runbooks.py runs them): jq, unzip, aws.
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
command -v aws >/dev/null 2>&1 || need+=(awscli)
# promtool (the tests check the metrics with it) comes with Debian's prometheus package.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# chromium: the HTML report's tests render it headless (tests/integration/test_report_html.py).
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Install only: no package's service is started (policy-rc.d exit 101 = "action forbidden",
# honoured by invoke-rc.d and deb-systemd-invoke), e.g. the Prometheus server.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 0755 /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
