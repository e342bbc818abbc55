// /items: the vault — list, add, edit and delete notes and logins.
import * as nt2 from "../../nt2.js";
import { busy, bytes, confirmDialog, download, field, h, messageLine, when } from "../dom.js";
import { messageOf } from "../errors.js";

export default {
  title: "Vault",
  async render(root, ctx) {
    const status = messageLine();
    for (const text of ctx.flashes) status.show(text);
    let items = [];
    let editing = null; // the item being edited, or null for a new one

    const title = field("Title", { type: "text", required: true, maxlength: "200", autocomplete: "off" });
    const username = field("Username", { type: "text", autocomplete: "off", maxlength: "200" });
    const url = field("URL", { type: "text", inputmode: "url", autocomplete: "off", maxlength: "2000" });
    const body = field("Note", { maxlength: "100000" }, { tag: "textarea" });
    const editorTitle = h("h2", { id: "editor-title" }, "Add an item");
    const save = h("button", { type: "submit" }, "Save item");
    const cancel = h("button", { type: "button", class: "secondary", hidden: true }, "Cancel editing");
    // An item's files (edited items only: a new item has no id to attach to yet).
    const filesTitle = h("h3", { id: "files-title" }, "Attachments");
    const fileList = h("ul", { class: "items", "aria-labelledby": "files-title" });
    const attach = field("Attach a file", { type: "file" }, { hint: "Encrypted here, then kept on the sync server." });
    const files = h("div", { class: "attachments", hidden: true }, filesTitle, fileList, attach.row);
    const form = h("form", { class: "card", "aria-labelledby": "editor-title" }, editorTitle, title.row, username.row, url.row, body.row, files, h("div", { class: "actions" }, save, cancel));

    const search = field("Search the vault", { type: "search", autocomplete: "off" });
    const count = h("h2", { id: "items-title" }, "Items");
    const list = h("ul", { class: "items", "aria-labelledby": "items-title" });

    function fill(item) {
      editing = item;
      title.input.value = item ? item.title || "" : "";
      username.input.value = item ? item.username || "" : "";
      url.input.value = item ? item.url || "" : "";
      body.input.value = item ? item.body || "" : "";
      editorTitle.textContent = item ? `Edit “${item.title || "untitled"}”` : "Add an item";
      save.textContent = item ? "Save changes" : "Save item";
      cancel.hidden = !item;
      drawFiles();
    }

    function drawFiles() {
      files.hidden = !editing;
      if (!editing) return;
      if (!attach.input.hasAttribute("aria-busy")) {
        attach.input.value = "";
        attach.input.disabled = !ctx.state.syncEnabled;
      }
      if (!ctx.state.syncEnabled) {
        fileList.replaceChildren(h("li", { class: "empty" }, "Attachments are kept on the sync server: enable cloud sync to attach or open files."));
        return;
      }
      nt2
        .listAttachments(editing.id)
        .then((rows) => fileList.replaceChildren(...(rows.length ? rows.map(fileRow) : [h("li", { class: "empty" }, "No attachments.")])))
        .catch((err) => status.show(messageOf(err), "error"));
    }

    function fileRow(ref) {
      const name = ref.name || "unnamed";
      const get = h("button", { type: "button", class: "secondary", "aria-label": `Download ${name}` }, "Download");
      const drop = h("button", { type: "button", class: "secondary", "aria-label": `Remove ${name}` }, "Remove");
      get.addEventListener("click", () =>
        busy(get, async () => {
          try {
            download(name, await nt2.getAttachment(ref.id), "application/octet-stream");
            status.show(`Downloaded “${name}”.`);
          } catch (err) {
            status.show(messageOf(err), "error");
          }
        }),
      );
      drop.addEventListener("click", async () => {
        const sure = await confirmDialog({ title: `Remove “${name}”?`, body: "The file is removed from this item here and, at the next sync, on your other devices.", confirm: "Remove", danger: true });
        if (!sure) return;
        try {
          await nt2.removeAttachment(ref.id);
          status.show(`Removed “${name}”.`);
          await refreshEditing();
        } catch (err) {
          status.show(messageOf(err), "error");
        }
      });
      return h("li", { class: "item" }, h("div", { class: "item-main" }, h("p", { class: "item-title" }, name), h("p", { class: "item-meta" }, ref.size === null ? "" : bytes(ref.size))), h("div", { class: "actions" }, get, drop));
    }

    // After an attachment change the item has a new revision: keep editing that one.
    async function refreshEditing() {
      const id = editing && editing.id;
      await load();
      const fresh = id && items.find((it) => it.id === id);
      if (fresh) editing = fresh;
      drawFiles();
    }

    attach.input.addEventListener("change", async () => {
      const chosen = attach.input.files && attach.input.files[0];
      if (!chosen || !editing) return;
      attach.input.disabled = true;
      attach.input.setAttribute("aria-busy", "true");
      status.show(`Encrypting and uploading “${chosen.name}”…`);
      try {
        await nt2.addAttachment(editing.id, chosen.name, new Uint8Array(await chosen.arrayBuffer()));
        status.show(`Attached “${chosen.name}”.`);
      } catch (err) {
        status.show(messageOf(err), "error");
      } finally {
        attach.input.removeAttribute("aria-busy");
        await refreshEditing();
      }
    });

    function draw() {
      const needle = search.input.value.trim().toLowerCase();
      const shown = items.filter((it) => !needle || [it.title, it.username, it.url, it.body].some((v) => (v || "").toLowerCase().includes(needle)));
      count.textContent = needle ? `Items (${shown.length} of ${items.length})` : `Items (${items.length})`;
      if (shown.length === 0) {
        list.replaceChildren(h("li", { class: "empty" }, items.length ? "No item matches the search." : "Your vault is empty: add a note or a login above."));
        return;
      }
      list.replaceChildren(...shown.map(row));
    }

    function row(item) {
      const name = item.title || "Untitled";
      const meta = [item.username, item.url].filter(Boolean).join(" · ");
      const edit = h("button", { type: "button", class: "secondary", "aria-label": `Edit ${name}` }, "Edit");
      const del = h("button", { type: "button", class: "secondary", "aria-label": `Delete ${name}` }, "Delete");
      edit.addEventListener("click", () => {
        fill(item);
        title.input.focus();
      });
      del.addEventListener("click", async () => {
        const sure = await confirmDialog({
          title: `Delete “${name}”?`,
          body: ctx.state.syncEnabled ? "It is deleted here and, at the next sync, on your other devices." : "It is deleted from this browser's vault.",
          confirm: "Delete",
          danger: true,
        });
        if (!sure) return;
        try {
          await nt2.deleteItem(item.id);
          if (editing && editing.id === item.id) fill(null);
          status.show(`Deleted “${name}”.`);
          await load();
          search.input.focus();
        } catch (err) {
          status.show(messageOf(err), "error");
        }
      });
      return h(
        "li",
        { class: "item" },
        h(
          "div",
          { class: "item-main" },
          h("p", { class: "item-title" }, name, ctx.state.syncEnabled && item.synced === false ? h("span", { class: "badge" }, "Not synced yet") : null),
          meta && h("p", { class: "item-meta" }, meta),
          item.body && h("p", { class: "item-body" }, item.body),
          item.updatedAt && h("p", { class: "item-meta" }, `Changed ${when(item.updatedAt)}`),
        ),
        h("div", { class: "actions" }, edit, del),
      );
    }

    async function load() {
      try {
        items = await nt2.listItems();
        items.sort((a, b) => (a.title || "").localeCompare(b.title || ""));
        draw();
      } catch (err) {
        status.show(messageOf(err), "error");
      }
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!title.input.value.trim()) {
        status.show("Give the item a title.", "error");
        title.input.focus();
        return;
      }
      await busy(save, async () => {
        try {
          const record = { title: title.input.value.trim(), username: username.input.value, url: url.input.value.trim(), body: body.input.value };
          if (editing) record.id = editing.id;
          await nt2.saveItem(record);
          status.show(editing ? `Saved changes to “${record.title}”.` : `Added “${record.title}”.`);
          fill(null);
          await load();
          title.input.focus();
        } catch (err) {
          status.show(messageOf(err), "error");
        }
      });
    });
    cancel.addEventListener("click", () => {
      fill(null);
      status.show("Editing cancelled.");
      title.input.focus();
    });
    search.input.addEventListener("input", draw);
    // Items changed by a pull (another device) or elsewhere in this page arrive here.
    ctx.hooks.onChange = () => load().then(drawFiles);

    root.append(h("h1", {}, "Vault"), status, form, h("section", { "aria-labelledby": "items-title" }, count, search.row, list));
    await load();
  },
};
