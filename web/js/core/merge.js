// Conflict rules shared with every client (chalicelib/shared/merge.py, docs/CRYPTO.md
// "Conflicts"): the same decision on every replica, and no typed text is dropped.
import { canonicalJson, hex, utf8 } from "./bytes.js";
import { sha256 } from "./crypto.js";

export const CONTENT_FIELDS = ["title", "body", "username", "url"];

export async function contentDigest(item) {
  const content = {};
  for (const name of CONTENT_FIELDS) content[name] = item[name] ?? "";
  content.attachments = (item.attachments ?? []).map((a) => a.id ?? "").sort(pyCompare);
  return hex(await sha256(utf8(canonicalJson(content))));
}

// Python compares strings by code point; for the ASCII ids and hex digests here that is
// plain < on UTF-16 units as well.
function pyCompare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

export async function sameContent(a, b) {
  return (await contentDigest(a)) === (await contentDigest(b));
}

async function orderKey(item) {
  return [Number(item.updatedAt ?? 0), String(item.replicaId ?? ""), await contentDigest(item)];
}

export async function localWins(local, remote) {
  const [a, b] = [await orderKey(local), await orderKey(remote)];
  for (let i = 0; i < 3; i++) {
    if (a[i] !== b[i]) return a[i] > b[i];
  }
  return false;
}

// {keep, copy, nextRevision} for a local unpushed edit against a remote edit of one item.
export async function resolveLive(local, remote) {
  const nextRevision = Math.max(local.revision, remote.revision) + 1;
  if (await sameContent(local, remote)) return { keep: "remote", copy: null, nextRevision: remote.revision };
  if (await localWins(local, remote)) return { keep: "local", copy: "remote", nextRevision };
  return { keep: "remote", copy: "local", nextRevision: remote.revision };
}

function two(n) {
  return String(n).padStart(2, "0");
}

export function conflictedCopyTitle(title, replicaId, updatedAtMs) {
  const d = new Date(updatedAtMs);
  const when = `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
  return `${title} (conflicted copy ${when} ${replicaId})`;
}

export function conflictedCopy(item, { nowMs, replicaId }) {
  const copy = {};
  for (const name of CONTENT_FIELDS) copy[name] = item[name] ?? "";
  copy.title = conflictedCopyTitle(String(item.title ?? ""), String(item.replicaId ?? ""), Number(item.updatedAt ?? 0));
  Object.assign(copy, { updatedAt: nowMs, revision: 1, replicaId, attachments: [...(item.attachments ?? [])] });
  return copy;
}
