// The official phoenix client against a live Corkboard server, driven by pytest over stdin/stdout.
// Env: CB_SOCKET_URL (ws://host:port/socket), CB_TOKEN, CB_TOPIC, CB_LAST_SEQ, CB_AUTH ("param"|"subprotocol").
// Prints one JSON object per line; reads commands ("drop", "exit") one per line.
import { Socket, Presence } from "phoenix";
import WebSocket from "ws";
import readline from "node:readline";

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const topic = process.env.CB_TOPIC;
let lastSeq = process.env.CB_LAST_SEQ ? Number(process.env.CB_LAST_SEQ) : null;

const opts = {
  transport: WebSocket,
  reconnectAfterMs: () => 1500,
  rejoinAfterMs: () => 300,
  heartbeatIntervalMs: 5000,
};
if (process.env.CB_AUTH === "subprotocol") {
  opts.authToken = process.env.CB_TOKEN;
} else {
  opts.params = { token: process.env.CB_TOKEN };
}
const socket = new Socket(process.env.CB_SOCKET_URL, opts);
socket.onOpen(() => out({ type: "open" }));
socket.onClose((e) => out({ type: "close", code: e && e.code }));
socket.connect();

const channel = socket.channel(topic, () => (lastSeq === null ? {} : { last_seq: lastSeq }));
const original = channel.onMessage.bind(channel);
channel.onMessage = (event, payload, ref) => {
  if (payload && typeof payload.seq === "number" && event.includes(".")) {
    out({ type: "event", event, seq: payload.seq });
    lastSeq = payload.seq;
  }
  return original(event, payload, ref);
};
const presence = new Presence(channel);
presence.onSync(() => {
  out({ type: "presence", list: presence.list((id, { metas }) => ({ id, metas: metas.length })) });
});
channel.onClose(() => out({ type: "channel_close" }));
const join = () =>
  channel
    .join()
    .receive("ok", (reply) => out({ type: "joined", reply }))
    .receive("error", (reply) => out({ type: "join_error", reply }));
join();
// phoenix.js rejoins by itself after a reconnect (same joinPush): its hooks report each rejoin too.
channel.onError(() => out({ type: "channel_error" }));

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const cmd = line.trim();
  if (cmd === "drop") {
    out({ type: "dropping" });
    socket.conn.close(4000, "test drop"); // not a clean disconnect: phoenix.js reconnects and rejoins
  } else if (cmd === "exit") {
    socket.disconnect(() => process.exit(0));
    setTimeout(() => process.exit(0), 500);
  }
});
