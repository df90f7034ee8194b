// A deliberately broken MCP server (stdio) for agentry's failure tests:
//   node bad-server.mjs hang     answers the handshake and tools/list, never a tools/call
//   node bad-server.mjs garbage  answers a tools/call with a line that is not JSON, then a
//                                 response to an id nobody asked for
//   node bad-server.mjs crash    exits when a tool is called
import readline from "node:readline";

const mode = process.argv[2];
const send = (m) => process.stdout.write(JSON.stringify(m) + "\n");
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let m;
  try { m = JSON.parse(line); } catch { return; }
  if (m.method === "initialize") {
    send({ jsonrpc: "2.0", id: m.id, result: {
      protocolVersion: m.params?.protocolVersion ?? "2025-06-18",
      capabilities: { tools: {} }, serverInfo: { name: `bad-${mode}`, version: "0.0.1" } } });
  } else if (m.method === "tools/list") {
    send({ jsonrpc: "2.0", id: m.id, result: { tools: [{ name: "work", description: "Does work.",
      inputSchema: { type: "object", properties: { n: { type: "integer" } } } }] } });
  } else if (m.method === "tools/call") {
    if (mode === "hang") return;
    if (mode === "crash") process.exit(3);
    if (mode === "garbage") {
      process.stdout.write("this is not JSON-RPC {{{\n");
      send({ jsonrpc: "2.0", id: 987654, result: { content: [] } });
    }
  } else if (m.id !== undefined) {
    send({ jsonrpc: "2.0", id: m.id, result: {} });
  }
});
