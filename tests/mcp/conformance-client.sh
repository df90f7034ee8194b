#!/usr/bin/env bash
# agentry's MCP client under the official conformance suite, in client mode:
#   conformance client --command "bash tests/mcp/conformance-client.sh AGENTRY" --scenario S
# The suite appends the scenario's server URL and names the scenario in
# MCP_CONFORMANCE_SCENARIO; each scenario is one ordinary `agentry mcp` command.
set -euo pipefail
agentry=$1
url=${*: -1}
case "${MCP_CONFORMANCE_SCENARIO:-}" in
  tools_call)
    exec "$agentry" mcp call add_numbers --args '{"a":5,"b":3}' -- "$url" ;;
  elicitation-sep1034-client-defaults)
    exec "$agentry" mcp call test_client_elicitation_defaults --elicit defaults -- "$url" ;;
  sse-retry)
    exec "$agentry" mcp call test_reconnection -- "$url" ;;
  *)
    exec "$agentry" mcp tools -- "$url" ;;
esac
