// Warnings a sync leaves behind (a server withholding or replaying changes, an item still
// under a retired key): each sync's summary carries them, and listeners hear them too, so a
// background sync (live, or the push after an edit) reaches the person as well.
const listeners = new Set();

export function onNotices(cb) {
  listeners.add(cb);
  return () => listeners.delete(cb);
}

export function emitNotices(list) {
  if (!list.length) return;
  for (const cb of listeners) {
    try {
      cb([...list]);
    } catch (err) {
      console.error(err);
    }
  }
}
