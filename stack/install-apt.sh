#!/usr/bin/env bash
# Debian packages strata's stack, tests and bench need. Idempotent; quiet when all are present.
# The toolchains (java, mvn, go) are installed from Debian only when the command is missing: the
# project's machines already have them (a newer Go among them), and Debian's would shadow nothing.
set -euo pipefail
PKGS=(docker.io busybox-static iproute2 fio sysstat qemu-system-x86 cpio openssl prometheus-alertmanager)
# strata bench's workload tools (bench/workloads/packages.ts; the bench also installs them on demand).
PKGS+=(sysbench iperf3 redis-server redis-tools mariadb-server sockperf)
command -v java >/dev/null 2>&1 || PKGS+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || PKGS+=(maven)
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || PKGS+=(golang-go)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "strata: missing Debian packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "strata: installing Debian packages: ${missing[*]}" >&2
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "strata: Debian packages installed in $(($(date +%s) - start)) s" >&2
