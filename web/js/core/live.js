// Live sync (PROTOCOL §10, nt2sync/live.py): a ticket, a WebSocket, a pull on `changed` from
// another replica (bursts coalesced), a sync after every (re)connect to catch up, and a
// reconnect with backoff and a new ticket when the connection drops.
import { Nt2Error } from "./errors.js";
import { call } from "./session.js";
import { syncNow } from "./sync.js";
import * as vault from "./vault.js";

const COALESCE_MS = 50;
const PING_MS = 300_000; // inside API Gateway's 10-minute idle limit
const MAX_BACKOFF_MS = 30_000;
const FATAL = new Set(["device_revoked", "session_revoked", "password_changed", "locked", "sync_off", "server_lied", "tampered", "rollback", "unproven_deletion"]);

let state = "off";
let generation = 0;
let socket = null;
const listeners = new Set();
let lastError = null;

export function liveState() {
  return state;
}

export function onLiveState(cb) {
  listeners.add(cb);
  return () => listeners.delete(cb);
}

function setState(next, detail = {}) {
  if (next === state && !detail.devices && !detail.error) return;
  state = next;
  for (const cb of listeners) {
    try {
      cb(next, detail);
    } catch (err) {
      console.error(err);
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function syncLocked() {
  return vault.exclusive(() => syncNow());
}

export function startLive() {
  if (state !== "off") return;
  const gen = ++generation;
  setState("connecting");
  run(gen).catch((err) => console.error(err));
}

export function stopLive(detail = {}) {
  generation++;
  if (socket) {
    try {
      socket.close(1000);
    } catch {
      // already closed
    }
    socket = null;
  }
  setState("off", detail);
}

function ticketUrl(answer) {
  if (!answer || typeof answer.url !== "string" || typeof answer.ticket !== "string") throw new Nt2Error("server_lied", "The server's live ticket is malformed.");
  const url = new URL(answer.url);
  if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new Nt2Error("server_lied", "The server's live address is not a WebSocket address.");
  url.searchParams.set("ticket", answer.ticket);
  return url.toString();
}

async function run(gen) {
  let backoff = 500;
  let first = true;
  while (gen === generation) {
    try {
      setState(first ? "connecting" : "reconnecting");
      await syncLocked();
      const url = ticketUrl(await call((a) => a.liveTicket()));
      if (gen !== generation) return;
      await connect(gen, url, () => {
        backoff = 500;
      });
    } catch (err) {
      if (gen !== generation) return;
      if (FATAL.has(err?.code)) {
        lastError = err;
        stopLive({ error: err });
        return;
      }
    }
    if (gen !== generation) return;
    first = false;
    setState("reconnecting");
    await sleep(backoff);
    backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
  }
}

// One connection's life; resolves when it closes.
function connect(gen, url, onOpen) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    socket = ws;
    let timer = null;
    let pinger = null;
    let pending = false;
    let syncing = Promise.resolve();
    const pullSoon = () => {
      if (pending) return;
      pending = true;
      timer = setTimeout(() => {
        pending = false;
        syncing = syncing.then(syncLocked).catch((err) => {
          if (FATAL.has(err?.code)) {
            lastError = err;
            stopLive({ error: err });
          }
        });
      }, COALESCE_MS);
    };
    ws.onopen = () => {
      if (gen !== generation) return ws.close();
      onOpen();
      setState("live");
      pinger = setInterval(() => {
        try {
          ws.send(JSON.stringify({ type: "ping" }));
        } catch {
          // closing
        }
      }, PING_MS);
      // a change between the catch-up sync and the connection would be missed otherwise
      pullSoon();
    };
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(typeof event.data === "string" ? event.data : "");
      } catch {
        return;
      }
      if (!frame || typeof frame !== "object") return;
      if (frame.type === "ended") {
        const reason = frame.reason === "revoked" ? "device_revoked" : "password_changed";
        const message =
          reason === "device_revoked"
            ? "This device was revoked from the vault's enrolled devices; live sync stopped."
            : "The master password was changed on another device; live sync stopped. Adopt the new master password.";
        lastError = new Nt2Error(reason, message);
        stopLive({ error: lastError });
        return;
      }
      if (frame.type === "changed") {
        const v = vault.V;
        if (!v) return;
        const own = frame.replicaId === v.st.replicaId;
        if (!own || Number(frame.watermark || 0) > Number(v.st.watermark || 0)) pullSoon();
      } else if (frame.type === "devices") {
        setState(state, { devices: true });
      }
    };
    ws.onerror = () => {};
    ws.onclose = () => {
      clearTimeout(timer);
      clearInterval(pinger);
      if (socket === ws) socket = null;
      resolve();
    };
    void reject;
  });
}

export function liveError() {
  return lastError;
}
