#!/usr/bin/env bash
# Creates the secrets of docker-compose.yml in deploy/compose/secrets/ (which git ignores), all random:
#   admin.password      the password of the dashboard's user `admin`, created at the server's first start
#   enroll.token        the one-time token gateway gw-1 enrolls with (its key registered, its broker password issued)
#   influxdb.password   the password of InfluxDB's user `admin`
#   influxdb.token      InfluxDB's operator token, with which the server writes and reads
# Existing files are kept; pass --force to replace them all (then also `docker compose down -v`: InfluxDB and
# the server keep what they were set up with). --new-token replaces enroll.token alone, for a gateway that has
# to enroll again (see README.md). --dir <dir> writes them elsewhere. Needs only openssl.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
secrets="$here/secrets"
files=(admin.password enroll.token influxdb.password influxdb.token)

usage() {
  echo "usage: $0 [--force | --new-token] [--dir <dir>]" >&2
  exit 2
}
force=0
new_token=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1 ;;
    --new-token) new_token=1 ;;
    --dir)
      [[ $# -ge 2 ]] || usage
      secrets="$2"
      shift
      ;;
    *) usage ;;
  esac
  shift
done

if [[ $force -eq 1 && $new_token -eq 1 ]]; then usage; fi

command -v openssl >/dev/null || {
  echo "make-secrets: openssl is required" >&2
  exit 1
}
# 32 random bytes in base64url without padding: 43 characters
random() { openssl rand -base64 32 | tr -d '\n=' | tr '+/' '-_'; }

# Compose bind-mounts secret files with their host owner and mode; the labtrace containers run as the
# image's `node` user and InfluxDB's as `influxdb`, both uid 1000. A mode-600 file is only readable there
# if it belongs to uid 1000; otherwise the files are made world-readable, and the mode-700 directory
# keeps other host users out.
if [[ "$(id -u)" == 1000 ]]; then mode=600; else mode=644; fi

write() { # file content
  rm -f "$secrets/$1"
  printf '%s\n' "$2" >"$secrets/$1"
  chmod "$mode" "$secrets/$1"
}

if [[ $new_token -eq 1 ]]; then
  if [[ ! -d "$secrets" ]]; then
    echo "make-secrets: $secrets does not exist; run without --new-token first" >&2
    exit 1
  fi
  umask 077
  # in place (the same file, not a new one), so that a container that mounted it sees the new token
  printf '%s\n' "lt-enroll-$(random)" >"$secrets/enroll.token"
  chmod "$mode" "$secrets/enroll.token"
  echo "make-secrets: wrote a new enroll.token in $secrets"
  echo "next: docker compose restart server, then docker compose up -d gateway"
  exit 0
fi

if [[ $force -eq 0 ]]; then
  present=0
  for f in "${files[@]}"; do
    if [[ -e "$secrets/$f" ]]; then present=$((present + 1)); fi
  done
  if [[ $present -eq ${#files[@]} ]]; then
    echo "make-secrets: the secrets exist already; keeping them (--force replaces them all)" >&2
    exit 0
  elif [[ $present -gt 0 ]]; then
    echo "make-secrets: only some of the secrets exist in $secrets; run with --force to make a new set" >&2
    exit 1
  fi
fi

mkdir -p "$secrets"
chmod 700 "$secrets"
umask 077
write admin.password "$(random)"
write enroll.token "lt-enroll-$(random)"
write influxdb.password "$(random)"
write influxdb.token "$(random)"

echo "make-secrets: wrote ${files[*]} (mode $mode) in $secrets"
echo "next: docker compose up -d --build"
