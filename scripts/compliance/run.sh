#!/usr/bin/env bash
# Runs stackhpc's s3-active-storage-compliance-suite against activestore's server, with s3rver
# standing in for MinIO and the Node static test server for nginx. The suite is fetched (not
# committed) into a temporary directory and configured by editing its compliance/config.py.
#
#   scripts/compliance/run.sh [suite-checkout-or-git-dir] [extra pytest args...]
#
# Needs Debian's /usr/bin/python3 with numpy, numcodecs, pytest, requests, boto3 and cbor2
# (apt-get install python3-boto3 python3-cbor2 python3-numcodecs python3-pytest).
set -euo pipefail
cd "$(dirname "$0")/../.."
SUITE_SRC="${1:-/work/.mirror/stackhpc+s3-active-storage-compliance-suite/repo}"
shift || true
WORK="$(mktemp -d /tmp/compliance-XXXXXX)"
trap 'exec 3>&- 2>/dev/null || true; [ -n "${SVC_PID:-}" ] && kill "$SVC_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

if [ -d "$SUITE_SRC/compliance" ]; then
  cp -r "$SUITE_SRC" "$WORK/suite"
elif git --git-dir="$SUITE_SRC" rev-parse HEAD >/dev/null 2>&1; then
  mkdir "$WORK/suite" && git --git-dir="$SUITE_SRC" archive HEAD | tar -x -C "$WORK/suite"
else
  git clone --depth 1 https://github.com/stackhpc/s3-active-storage-compliance-suite "$WORK/suite"
fi

# Start the services; they stop when our end of the pipe closes.
mkfifo "$WORK/in"
npx vite-node scripts/compliance/services.ts -- "$WORK/http" < "$WORK/in" > "$WORK/urls" 2> "$WORK/services.log" &
SVC_PID=$!
exec 3> "$WORK/in"
for _ in $(seq 1 120); do [ -s "$WORK/urls" ] && break; sleep 0.5; done
[ -s "$WORK/urls" ] || { cat "$WORK/services.log"; echo "services did not start" >&2; exit 1; }
URLS="$(head -1 "$WORK/urls")"
get() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$URLS" "$1"; }
S3="$(get s3)"; HTTP="$(get http)"; SERVER="$(get server)"
echo "s3rver $S3, http $HTTP, activestore $SERVER"

CONFIG="$WORK/suite/compliance/config.py"
sed -i \
  -e "s#^S3_SOURCE = .*#S3_SOURCE = \"$S3\"#" \
  -e "s#^AWS_ID = .*#AWS_ID = \"S3RVER\"#" \
  -e "s#^AWS_PASSWORD = .*#AWS_PASSWORD = \"S3RVER\"#" \
  -e "s#^PROXY_URL = .*#PROXY_URL = \"$SERVER\"#" \
  -e "s#^HTTP_SOURCE = .*#HTTP_SOURCE = \"$HTTP\"#" \
  "$CONFIG"
grep -E "^(S3_SOURCE|AWS_ID|PROXY_URL|HTTP_SOURCE|HTTP_USERNAME) =" "$CONFIG"

cd "$WORK/suite"
set +e
# s3rver stand-in quirk: once a PUT of an over-long key has failed (the MissingValues cases' file
# names pass 255 bytes, too long for s3rver's file system layout) its bucket listing fails for good,
# and the error-response tests list the bucket (they need the objects the basic tests uploaded).
# So: basic tests without those cases, then the error/API tests, then those cases last.
run() { AWS_DEFAULT_REGION=us-east-1 /usr/bin/python3 -m pytest -p no:cacheprovider -q -rfE "$@" | tee -a "$WORK/pytest.log"; return "${PIPESTATUS[0]}"; }
if [ "$#" -eq 0 ]; then
  run compliance/test_basic_operations.py -k "not MissingValues"; S1=$?
  run compliance/test_error_response.py compliance/test_api_spec.py; S2=$?
  run compliance/test_basic_operations.py -k "MissingValues"; S3=$?
  grep -E "^[0-9]+ (passed|failed)|^=+ .*(passed|failed)" "$WORK/pytest.log" || true
  [ $((S1 + S2 + S3)) -eq 0 ]; STATUS=$?
  set -e
  exit "$STATUS"
fi
run "$@"
STATUS=$?
set -e
exit "$STATUS"
