#!/bin/sh
# Entrypoint of the `gateway` service of docker-compose.yml: on the first start, makes the gateway's key
# and enrolls it at LABTRACE_SERVER_URL with the token in LABTRACE_ENROLL_TOKEN_FILE (the server hands out
# the broker password, written to mqtt.passwordFile); once enrolled, later starts skip that. Then runs
# the gateway. Its arguments (--config <file>) go to both.
set -eu
labtrace="$(dirname "$0")/../../bin/labtrace.js"
if ! node "$labtrace" gateway enroll --if-needed --server "${LABTRACE_SERVER_URL:?}" --token-file "${LABTRACE_ENROLL_TOKEN_FILE:?}" "$@"; then
  echo "gateway-start: the enrollment failed; see \"The gateway does not enroll\" in deploy/compose/README.md" >&2
  exit 1
fi
exec node "$labtrace" gateway "$@"
