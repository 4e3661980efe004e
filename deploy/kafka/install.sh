#!/usr/bin/env bash
# deploy/kafka/install.sh: installs the Kafka 3.9.1 broker jars (and a logging
# backend) listed in deploy/kafka/pom.xml into $CUSTOS_RUN_DIR/kafka/libs.
#
# Uses Maven (`mvn dependency:copy-dependencies -DincludeScope=runtime`), so
# downloads land in ~/.m2 and a second install fetches nothing. Skips
# everything when the libs folder already carries a marker matching the
# current pom.xml. Installs a Java runtime and Maven with apt-get when they
# are missing (root on Debian/Ubuntu).
#
# Usage: deploy/kafka/install.sh        (no arguments; idempotent)
# Env:   CUSTOS_RUN_DIR  (default <repo>/deploy/.run)
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

here="${CUSTOS_REPO_ROOT}/deploy/kafka"
libs="${CUSTOS_RUN_DIR}/kafka/libs"
marker="${libs}/.custos-installed"
want="$(sha256sum "${here}/pom.xml" | cut -d' ' -f1)"

if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
  log "Kafka jars already installed in ${libs}"
  exit 0
fi

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if ((${#missing[@]} > 0)); then
  apt_install "${missing[@]}"
fi

log "installing Kafka jars into ${libs} (mvn dependency:copy-dependencies)"
mkdir -p "${CUSTOS_RUN_DIR}/kafka"
tmp="$(mktemp -d "${CUSTOS_RUN_DIR}/kafka/libs.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# Maven 3.8 prints stray colour codes even with -q -B; strip them.
mvn -B -q -Dstyle.color=never -f "${here}/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' >&2 ||
  die "mvn could not fetch the Kafka jars (is Maven Central reachable? see output above)"

ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka_2.13 jar missing after mvn run"
echo "$want" >"${tmp}/.custos-installed"
rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
log "installed $(find "$libs" -name '*.jar' | wc -l) jars ($(du -sh "$libs" | cut -f1)) into ${libs}"
