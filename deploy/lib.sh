# shellcheck shell=bash
# shellcheck disable=SC2016 # bash -c '...' scripts take their values as "$1" "$2" on purpose.
# deploy/lib.sh: helpers shared by the deploy scripts. Source it, don't run it.
#
# Provides:
#   CUSTOS_REPO_ROOT   the repository root (derived from this file's location)
#   CUSTOS_RUN_DIR     where services keep data, logs, pid files and installed
#                      jars; default <repo>/deploy/.run (git-ignored)
#   log/warn/die       messages on stderr, prefixed with the calling script
#   port_open          is a TCP port accepting connections?
#   http_get           tiny HTTP/1.0 GET over bash's /dev/tcp (no curl needed)
#   kafka_probe        does a Kafka broker answer a Metadata request?
#   wait_until         poll a check with a timeout; on failure print the tail
#                      of the service log and fail
#   start_background   start a long-running service detached, with pid file
#   pid_running        is the pid in a pid file alive and the expected program?
#   stop_pidfile       SIGTERM, wait, SIGKILL a service started by us
#   apt_install        apt-get install (with one apt-get update) as root
#   take_lock          serialise concurrent runs of a script (flock)
#
# Everything here writes diagnostics to stderr so that scripts can keep stdout
# for values other programs capture.

CUSTOS_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CUSTOS_RUN_DIR="${CUSTOS_RUN_DIR:-${CUSTOS_REPO_ROOT}/deploy/.run}"
export CUSTOS_REPO_ROOT CUSTOS_RUN_DIR

_custos_tag="$(basename "$(dirname "$0")")/$(basename "$0")"

log() { printf '[%s] %s\n' "${_custos_tag}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${_custos_tag}" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "${_custos_tag}" "$*" >&2
  exit 1
}

# port_open HOST PORT: succeeds if something accepts TCP connections there.
port_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# http_get HOST PORT PATH: prints the response body of a GET; fails when the
# connection fails or the status is not 200.
http_get() {
  local resp
  resp="$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" "$1" >&3
    cat <&3' _ "$1" "$2" "$3" 2>/dev/null)" || return 1
  [[ "${resp%%$'\r'*}" == *" 200 "* || "${resp%%$'\r'*}" == *" 200" ]] || return 1
  printf '%s' "${resp#*$'\r\n\r\n'}"
}

# kafka_probe HOST PORT: sends a Kafka Metadata v1 request for no topics and
# succeeds if the answer carries our correlation id and at least one broker,
# i.e. the broker has joined the cluster and serves requests. Pure bash, no
# JVM: it costs a few milliseconds.
kafka_probe() {
  local hex
  # Request: size=20, api_key=3 (Metadata), api_version=1, correlation_id=0x0c057051,
  # client_id="custos" (int16 length 6), topics=[] (int32 0).
  hex="$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "\x00\x00\x00\x14\x00\x03\x00\x01\x0c\x05\x70\x51\x00\x06custos\x00\x00\x00\x00" >&3
    od -An -v -tx1 -N12 <&3' _ "$1" "$2" 2>/dev/null | tr -d ' \n')" || return 1
  # Response: int32 size, int32 correlation_id, int32 broker count.
  [[ ${#hex} -eq 24 && "${hex:8:8}" == "0c057051" ]] || return 1
  ((16#${hex:16:8} >= 1))
}

# kafka_any_answers "h1:p1,h2:p2": succeeds if any listed broker answers.
kafka_any_answers() {
  local addr
  local -a addrs
  IFS=',' read -r -a addrs <<<"$1"
  for addr in "${addrs[@]}"; do
    addr="${addr// /}"
    [[ -n "$addr" ]] || continue
    kafka_probe "${addr%:*}" "${addr##*:}" && return 0
  done
  return 1
}

# wait_until NAME TIMEOUT_S LOGFILE PIDFILE CHECK...: runs CHECK every 0.2 s
# until it succeeds. Fails (exit) after TIMEOUT_S seconds or as soon as the
# process in PIDFILE dies, printing the last lines of LOGFILE.
wait_until() {
  local name="$1" timeout_s="$2" logfile="$3" pidfile="$4"
  shift 4
  local deadline=$((SECONDS + timeout_s))
  until "$@"; do
    if [[ -n "$pidfile" ]] && ! pid_alive "$(cat "$pidfile" 2>/dev/null)"; then
      _tail_log "$logfile"
      die "$name exited while starting; see $logfile"
    fi
    if ((SECONDS >= deadline)); then
      _tail_log "$logfile"
      die "$name not ready after ${timeout_s}s; see $logfile"
    fi
    sleep 0.2
  done
}

_tail_log() {
  local f
  for f in "$@"; do
    [[ -f "$f" ]] || continue
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
    printf -- '-----\n' >&2
  done
}

# start_background PIDFILE LOGFILE CMD...: starts CMD in its own session
# (so that it outlives the calling shell and its process group), stdin from
# /dev/null, stdout and stderr appended to LOGFILE, and records its pid.
start_background() {
  local pidfile="$1" logfile="$2"
  shift 2
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  # setsid execs CMD directly here (a non-interactive shell's background job
  # is not a process group leader), so $! is the service's own pid.
  # The service must not inherit take_lock's descriptor (it would hold the
  # lock for as long as it runs).
  if [[ -n "${_custos_lock_fd:-}" ]]; then
    setsid nohup "$@" </dev/null >>"$logfile" 2>&1 {_custos_lock_fd}>&- &
  else
    setsid nohup "$@" </dev/null >>"$logfile" 2>&1 &
  fi
  echo "$!" >"$pidfile"
}

# pid_alive PID: succeeds if PID is a live process (not a zombie).
pid_alive() {
  local state
  [[ "${1:-}" =~ ^[0-9]+$ ]] || return 1
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != "Z" ]]
}

# pid_running PIDFILE PATTERN: succeeds if the pid file names a live process
# whose command line contains PATTERN (guards against recycled pids).
pid_running() {
  local pidfile="$1" pattern="$2" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

# stop_pidfile NAME PIDFILE PATTERN TIMEOUT_S: SIGTERM the process, wait up to
# TIMEOUT_S seconds, then SIGKILL; removes the pid file. Only touches a
# process this project started (pid file + matching command line).
stop_pidfile() {
  local name="$1" pidfile="$2" pattern="$3" timeout_s="$4" pid
  if ! pid_running "$pidfile" "$pattern"; then
    [[ -f "$pidfile" ]] && log "$name: stale pid file removed"
    rm -f "$pidfile"
    log "$name is not running (nothing started by these scripts)"
    return 0
  fi
  pid="$(cat "$pidfile")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout_s))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      warn "$name did not stop within ${timeout_s}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
  log "$name stopped"
}

# apt_install PKG...: installs Debian packages non-interactively (root only).
apt_install() {
  if [[ "$(id -u)" -ne 0 ]]; then
    die "need root to install $* with apt-get (or install them yourself)"
  fi
  log "apt-get install $*"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# sed_escape STRING: escapes STRING for the replacement side of sed s|||.
sed_escape() {
  printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

# take_lock NAME: holds an exclusive lock on $CUSTOS_RUN_DIR/NAME.lock until
# the script exits, so that concurrent callers (parallel tests, CI and a
# developer) don't start a service twice or install into the same folder.
take_lock() {
  local lockfile="${CUSTOS_RUN_DIR}/$1.lock"
  mkdir -p "${CUSTOS_RUN_DIR}"
  exec {_custos_lock_fd}>"$lockfile"
  if ! flock -n "${_custos_lock_fd}"; then
    log "waiting for another deploy script holding ${lockfile}"
    flock -w 600 "${_custos_lock_fd}" || die "timed out waiting for ${lockfile}"
  fi
}
