// An MCP client on the official TypeScript SDK, for agentry's interoperability tests:
//   node ts-client.mjs stdio TOOL ARGS_JSON -- COMMAND ARGS…
//   node ts-client.mjs http  TOOL ARGS_JSON URL
// Connects, lists the tools, calls TOOL with ARGS_JSON, and prints one JSON line:
// {"server": …, "tools": [names], "result": <the CallToolResult>}. Exits 1 on any error.
// The SDK is resolved from $AGENTRY_NPM_DIR/node_modules (scripts/mcp-servers installs it).
import { createRequire } from "node:module";
import path from "node:path";
import os from "node:os";

const npm = process.env.AGENTRY_NPM_DIR || path.join(os.homedir(), ".cache/agentry/npm");
const require = createRequire(path.join(npm, "node_modules", "x.js"));
const sdk = (p) => import(require.resolve(`@modelcontextprotocol/sdk/${p}`));

const [mode, tool, argsJson, ...rest] = process.argv.slice(2);
const { Client } = await sdk("client/index.js");
let transport;
if (mode === "stdio") {
  const { StdioClientTransport } = await sdk("client/stdio.js");
  const cmd = rest[0] === "--" ? rest.slice(1) : rest;
  transport = new StdioClientTransport({ command: cmd[0], args: cmd.slice(1), stderr: "ignore" });
} else if (mode === "http") {
  const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");
  transport = new StreamableHTTPClientTransport(new URL(rest[0]));
} else {
  console.error("usage: ts-client.mjs stdio|http TOOL ARGS_JSON (-- COMMAND…|URL)");
  process.exit(2);
}
const client = new Client({ name: "agentry-interop-test", version: "1.0.0" });
try {
  await client.connect(transport);
  const { tools } = await client.listTools();
  const result = await client.callTool({ name: tool, arguments: JSON.parse(argsJson) });
  console.log(JSON.stringify({ server: client.getServerVersion(), tools: tools.map((t) => t.name), result }));
  await client.close();
  process.exit(0);
} catch (e) {
  console.error(String(e));
  process.exit(1);
}
