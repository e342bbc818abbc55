// Pull pages read as if every byte were hostile (nt2sync/pages.py): shape, bounds and order
// are checked before anything of a page is used; a page that fails stops the sync with one
// sentence and stores nothing.
import { Nt2Error } from "./errors.js";

export const MAX_VERSION = 2n ** 63n - 1n;
const NOTHING_STORED = "the sync stopped and nothing of it was stored.";

const refuse = (what) => new Nt2Error("server_lied", `The server sent a pull page that ${what}; ${NOTHING_STORED}`);

// JSON numbers above 2^53 lose precision in a browser: such a version is refused too.
const isVersion = (v) => Number.isSafeInteger(v) && v >= 1;

export function checkPullPage(page, since, limit) {
  if (!page || typeof page !== "object" || Array.isArray(page)) throw refuse("is not an object");
  const { items, watermark } = page;
  const more = page.hasMore ?? false;
  if (!Array.isArray(items)) throw refuse("has no item list");
  if (items.length > limit) throw refuse(`holds ${items.length} items where at most ${limit} were asked for`);
  if (typeof more !== "boolean") throw refuse("says neither that more follow nor that none do");
  if (!Number.isSafeInteger(watermark)) throw refuse("has no watermark");
  if (watermark < since) throw refuse(`moves the watermark from ${since} to ${watermark}`);
  if (more && watermark <= since) throw refuse("promises more without moving forward");
  let previous = since;
  const ids = new Set();
  for (const item of items) {
    if (!item || typeof item !== "object" || typeof item.id !== "string") throw refuse("holds an item without an id");
    if (!isVersion(item.version) || !(previous < item.version && item.version <= watermark)) {
      throw refuse(`puts an item at version ${String(item.version).slice(0, 24)} (out of order or outside the page)`);
    }
    if (ids.has(item.id)) throw refuse("holds one item twice");
    if (typeof (item.deleted ?? false) !== "boolean") throw refuse("holds an item that is neither deleted nor live");
    if (item.ciphertext !== null && item.ciphertext !== undefined && typeof item.ciphertext !== "string") {
      throw refuse("holds an item whose ciphertext is not text");
    }
    ids.add(item.id);
    previous = item.version;
  }
  return { items, watermark, more };
}
