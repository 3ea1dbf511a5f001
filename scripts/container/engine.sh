#!/usr/bin/env bash
# Makes a Docker engine available for the container test, or fails saying why.
#   engine.sh start   install docker.io / docker-compose if missing (root only), start dockerd if
#                     no daemon answers, and remember that we started it
#   engine.sh stop    stop dockerd only if `start` started it
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/common.sh"

pidfile="$CT_STATE_DIR/dockerd.pid"
logfile="$CT_STATE_DIR/dockerd.log"

install_missing() {
  local need=()
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
  # ss: the existing-install test lists docker-proxy listeners as an admin would
  command -v ss >/dev/null 2>&1 || need+=(iproute2)
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || ct_die "the container test needs the Debian packages ${need[*]}; install them as root: apt-get install -y ${need[*]}"
  ct_log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || ct_die "apt-get update failed; cannot install ${need[*]}"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || ct_die "apt-get install ${need[*]} failed"
}

start() {
  install_missing
  local why
  if why="$($DOCKER version --format '{{.Server.Version}}' 2>&1 >/dev/null)"; then
    ct_log "using the running Docker engine"
    return 0
  fi
  why="$(printf '%s' "$why" | grep -v '^$' | tail -n 1)"
  [ "$(id -u)" -eq 0 ] || ct_die "no Docker engine answers ($why); start one (systemctl start docker), get access to its socket, or run as root so that this script starts dockerd"
  if [ -S /var/run/docker.sock ] && pgrep -x dockerd >/dev/null 2>&1; then
    ct_die "a dockerd is running but does not answer on /var/run/docker.sock; see its log, or stop it and retry"
  fi
  ct_log "starting dockerd (log: $logfile)"
  # setsid: the daemon must not die with this shell, and its pid is what stop() signals.
  setsid dockerd >"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if $DOCKER info >/dev/null 2>&1; then
      ct_log "dockerd is up (pid $(cat "$pidfile"))"
      return 0
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      rm -f "$pidfile"
      tail -n 20 "$logfile" >&2 || true
      ct_die "dockerd exited during start (last lines of $logfile above)"
    fi
    sleep 0.5
  done
  tail -n 20 "$logfile" >&2 || true
  ct_die "dockerd did not answer within 60 s (last lines of $logfile above)"
}

stop() {
  [ -f "$pidfile" ] || return 0
  local pid
  pid="$(cat "$pidfile")"
  rm -f "$pidfile"
  kill -0 "$pid" 2>/dev/null || return 0
  ct_log "stopping the dockerd this test started (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  ct_log "dockerd $pid did not stop within 30 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) ct_die "usage: engine.sh start|stop" ;;
esac
