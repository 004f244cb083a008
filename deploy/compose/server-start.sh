#!/bin/sh
# Entrypoint of the `server` service of docker-compose.yml: registers the enrollment token of the lab's
# gateway (the file LABTRACE_ENROLL_TOKEN_FILE names, for gateway LABTRACE_ENROLL_GATEWAY), then runs the
# server. Its arguments (--config <file>) go to both. Registering is idempotent: a token registered
# before, used or not, is left as it is. The token itself is never printed.
set -eu
labtrace="$(dirname "$0")/../../bin/labtrace.js"
node "$labtrace" server enroll-token --gateway "${LABTRACE_ENROLL_GATEWAY:?}" --token-file "${LABTRACE_ENROLL_TOKEN_FILE:?}" "$@"
exec node "$labtrace" server "$@"
