// Test-only page: the facade and the core modules on `window`, for Playwright's evaluate.
// Served from the web origin like the app, so the same Content-Security-Policy applies.
import * as nt2 from "../js/nt2.js";
import * as bytes from "../js/core/bytes.js";
import * as crypto from "../js/core/crypto.js";
import * as merge from "../js/core/merge.js";
import * as pages from "../js/core/pages.js";
import * as store from "../js/core/store.js";
import * as vault from "../js/core/vault.js";
import * as backup from "../js/core/backup.js";

const params = new URLSearchParams(location.search);
// one database per test page: several vaults can live in one browser context
if (params.get("db")) store.useDatabase("nt2-vault-" + params.get("db"));
window.nt2 = nt2;
window.core = { bytes, crypto, merge, pages, store, vault, backup };
window.nt2Ready = true;
document.getElementById("status").textContent = "ready";
