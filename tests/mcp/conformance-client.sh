#!/usr/bin/env bash
# agentry's MCP client under the official conformance suite, in client mode:
#   conformance client --command "bash tests/mcp/conformance-client.sh AGENTRY" --scenario S
# The suite appends the scenario's server URL, names the scenario in
# MCP_CONFORMANCE_SCENARIO and passes what a user would configure (pre-registered client
# credentials) as JSON in MCP_CONFORMANCE_CONTEXT. Each scenario is one ordinary
# `agentry mcp` command; the browser that approves an authorization is curl, which follows
# the authorization server's redirect to agentry's callback listener as a browser would.
set -euo pipefail
agentry=$1
url=${*: -1}
context=${MCP_CONFORMANCE_CONTEXT:-"{}"}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2]) or "")' "$context" "$1"; }
export BROWSER="curl -fsSL -o /dev/null"
# Tokens are kept in a directory of this scenario's own, removed at the end.
export AGENTRY_OAUTH_DIR=$(mktemp -d)
trap 'rm -rf "$AGENTRY_OAUTH_DIR"' EXIT
export AGENTRY_OAUTH_CLIENT_ID=$(field client_id)
export AGENTRY_OAUTH_CLIENT_SECRET=$(field client_secret)
case "${MCP_CONFORMANCE_SCENARIO:-}" in
  tools_call)
    "$agentry" mcp call add_numbers --args '{"a":5,"b":3}' -- "$url" ;;
  elicitation-sep1034-client-defaults)
    "$agentry" mcp call test_client_elicitation_defaults --elicit defaults -- "$url" ;;
  sse-retry)
    "$agentry" mcp call test_reconnection -- "$url" ;;
  auth/basic-cimd)
    # The client metadata document the suite's authorization server expects.
    AGENTRY_OAUTH_CLIENT_METADATA_URL=https://conformance-test.local/client-metadata.json \
      "$agentry" mcp call test-tool -- "$url" ;;
  auth/client-credentials-*)
    AGENTRY_OAUTH_GRANT=client_credentials "$agentry" mcp call test-tool -- "$url" ;;
  auth/*)
    "$agentry" mcp call test-tool -- "$url" ;;
  *)
    "$agentry" mcp tools -- "$url" ;;
esac
