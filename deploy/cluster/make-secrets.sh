#!/usr/bin/env bash
# Creates the secrets of compose.yaml in deploy/cluster/secrets/ (which git ignores), all random:
#   admin.password          the password of the dashboard's user `admin`, created at each node's first start
#   postgres.password       the password of PostgreSQL's user `labtrace`
#   redis.password          the password of Redis's user `labtrace`
#   redis.acl               Redis's users: `default` off, `labtrace` with redis.password
#   mqtt-node-1.password    the broker password of node 1 (Mosquitto user labtrace-node-1)
#   mqtt-node-2.password    the broker password of node 2 (Mosquitto user labtrace-node-2)
#   mosquitto.users         both, as `user:password` lines; Mosquitto hashes them at its start
# Existing files are kept; pass --force to replace them all (then also `docker compose down -v`: PostgreSQL and the
# nodes keep what they were set up with). --dir <dir> writes them elsewhere. Needs only openssl.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
secrets="$here/secrets"
files=(admin.password postgres.password redis.password redis.acl mqtt-node-1.password mqtt-node-2.password mosquitto.users)

usage() {
  echo "usage: $0 [--force] [--dir <dir>]" >&2
  exit 2
}
force=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1 ;;
    --dir)
      [[ $# -ge 2 ]] || usage
      secrets="$2"
      shift
      ;;
    *) usage ;;
  esac
  shift
done

command -v openssl >/dev/null || {
  echo "make-secrets: openssl is required" >&2
  exit 1
}
# 32 random bytes in base64url without padding: 43 characters (no ':' or space, so safe in every file below)
random() { openssl rand -base64 32 | tr -d '\n=' | tr '+/' '-_'; }

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

# Compose bind-mounts secret files with their host owner and mode, and the services read them as different users
# (PostgreSQL and Redis as uid 999, Mosquitto as 1883, the labtrace nodes as 1000): the files are readable by all,
# and the mode-700 directory keeps other host users out.
mkdir -p "$secrets"
chmod 700 "$secrets"
umask 077
write() { # file content
  rm -f "$secrets/$1"
  printf '%s\n' "$2" >"$secrets/$1"
  chmod 644 "$secrets/$1"
}

redis="$(random)"
node1="$(random)"
node2="$(random)"
write admin.password "$(random)"
write postgres.password "$(random)"
write redis.password "$redis"
write redis.acl "user default off
user labtrace on >$redis ~* &* +@all"
write mqtt-node-1.password "$node1"
write mqtt-node-2.password "$node2"
write mosquitto.users "labtrace-node-1:$node1
labtrace-node-2:$node2"

echo "make-secrets: wrote ${files[*]} in $secrets"
echo "next: docker compose -f deploy/cluster/compose.yaml up -d --build"
