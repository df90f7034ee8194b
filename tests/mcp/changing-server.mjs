// An MCP server (stdio) whose tools change while a client uses it, for agentry's
// list_changed test: it offers `unlock`; calling `unlock` adds `secret`, sends
// notifications/tools/list_changed, and answers 50 ms later. It knows only the
// `initialize` handshake (2025-11-25), so it also exercises agentry's fallback from
// server/discover.
import readline from "node:readline";

let unlocked = false;
const send = (m) => process.stdout.write(JSON.stringify(m) + "\n");
const tool = (name, description) => ({ name, description,
  inputSchema: { type: "object", properties: {} } });
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  let m;
  try { m = JSON.parse(line); } catch { return; }
  if (m.method === "initialize") {
    send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: "2025-11-25",
      capabilities: { tools: { listChanged: true } },
      serverInfo: { name: "changing", version: "0.0.1" } } });
  } else if (m.method === "tools/list") {
    const tools = [tool("unlock", "Makes the secret tool appear.")];
    if (unlocked) tools.push(tool("secret", "Tells the secret."));
    send({ jsonrpc: "2.0", id: m.id, result: { tools } });
  } else if (m.method === "tools/call" && m.params.name === "unlock") {
    unlocked = true;
    send({ jsonrpc: "2.0", method: "notifications/tools/list_changed" });
    setTimeout(() => send({ jsonrpc: "2.0", id: m.id,
      result: { content: [{ type: "text", text: "unlocked" }] } }), 50);
  } else if (m.method === "tools/call" && m.params.name === "secret" && unlocked) {
    send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: "the secret is 42" }] } });
  } else if (m.id !== undefined) {
    send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: `no method ${m.method}` } });
  }
});
