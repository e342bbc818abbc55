// The web client's facade (contract: the UI imports only this module). First version:
// every function of the contract exists; those not built yet throw Nt2Error("not_ready").
export class Nt2Error extends Error {
  constructor(code, message) {
    super(message);
    this.name = "Nt2Error";
    this.code = code;
  }
}

function notReady(name) {
  return async () => {
    throw new Nt2Error("not_ready", `${name} is not built yet in this version of the web client.`);
  };
}

export async function state() {
  return { exists: false, unlocked: false, syncEnabled: false, server: null };
}
export const createVault = notReady("createVault");
export const unlock = notReady("unlock");
export function lock() {}
export function setAutoLock(_ms) {}
export function onLock(_cb) {}
export const listItems = notReady("listItems");
export const saveItem = notReady("saveItem");
export const deleteItem = notReady("deleteItem");
export const syncStatus = notReady("syncStatus");
export const enableSync = notReady("enableSync");
export const syncNow = notReady("syncNow");
export const disableSync = notReady("disableSync");
export const premiumStatus = notReady("premiumStatus");
export const redeemPromo = notReady("redeemPromo");
export const checkoutUrl = notReady("checkoutUrl");
export const listDevices = notReady("listDevices");
export const renameDevice = notReady("renameDevice");
export const revokeDevice = notReady("revokeDevice");
export const parseKit = notReady("parseKit");
export const joinFromKit = notReady("joinFromKit");
export const joinFromServer = notReady("joinFromServer");
export const exportKit = notReady("exportKit");
export const exportBackup = notReady("exportBackup");
export const importBackup = notReady("importBackup");
export const changePassword = notReady("changePassword");
export const adoptPassword = notReady("adoptPassword");
export function startLive() {}
export function stopLive() {}
export function onChange(_cb) {}
export function onLiveState(_cb) {}
export async function config() {
  const res = await fetch("/config.json", { cache: "no-store" });
  if (!res.ok) throw new Nt2Error("config_unavailable", "The page could not read its configuration; reload it.");
  return res.json();
}
