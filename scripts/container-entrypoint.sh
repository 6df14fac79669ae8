#!/bin/sh
# Container entry point: the first argument names the service to run.
set -eu
service="${1:-}"
[ $# -gt 0 ] && shift
case "$service" in
  idp|demo-db|policy|audit|approval|listener|api)
    exec node "/app/services/$service/dist/main.js" "$@" ;;
  gatehouse|cli)
    exec node /app/packages/cli/dist/main.js "$@" ;;
  healthcheck)
    exec node /app/scripts/healthcheck.mjs "$@" ;;
  *)
    echo "usage: <idp|demo-db|policy|audit|approval|listener|api> [--config FILE] | gatehouse <command> | healthcheck <tcp HOST PORT|http URL>" >&2
    exit 2 ;;
esac
