// dimnb filter bar: the Call List's quick filters and saved filters. The kernel validates everything:
// this view sends the whole form ({type: "apply", form}) on every change, and saved-filter actions
// ({type: "load_saved" | "save" | "save_as" | "update" | "delete" | "reset", ...}). Strings from the model
// are only ever set as textContent / values, never as HTML.
//
// Stable selectors: root div.dimnb-filters; inputs .dimnb-f-period, .dimnb-f-start, .dimnb-f-end,
// .dimnb-f-timezone, .dimnb-f-direction, .dimnb-f-outcome, .dimnb-f-group, .dimnb-f-party,
// .dimnb-f-min-duration, .dimnb-f-max-duration, .dimnb-f-with-recordings (checkbox), .dimnb-f-reset;
// saved filters .dimnb-saved-picker, .dimnb-saved-save, .dimnb-saved-save-as, .dimnb-saved-edit,
// .dimnb-saved-delete, editor .dimnb-saved-name, .dimnb-saved-share, .dimnb-saved-ok, .dimnb-saved-cancel;
// the message .dimnb-filters-message (.dimnb-msg-error / .dimnb-msg-info).

const SVG = (body, size = 14) =>
  `<svg viewBox="0 0 24 24" width="${size}" height="${size}" aria-hidden="true" focusable="false">${body}</svg>`;
const ICONS = {
  search: SVG('<circle cx="11" cy="11" r="6.5" stroke="currentColor" stroke-width="2" fill="none"/><path d="M16 16l4.5 4.5" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>'),
  bookmark: SVG('<path d="M7 4h10v16l-5-3.5L7 20z" stroke="currentColor" stroke-width="2" fill="none" stroke-linejoin="round"/>'),
  reset: SVG('<path d="M5 12a7 7 0 1 0 2.05-4.95M5 5v4h4" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>'),
};

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

function option(value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  return o;
}

function field(label, control, cls) {
  const wrap = el("label", `dimnb-field ${cls || ""}`);
  wrap.appendChild(el("span", "dimnb-field-label", label));
  wrap.appendChild(control);
  return wrap;
}

function input(cls, type, placeholder) {
  const i = el("input", `dimnb-input ${cls}`);
  i.type = type;
  if (placeholder) i.placeholder = placeholder;
  i.autocomplete = "off";
  i.spellcheck = false;
  return i;
}

function button(cls, text, title, icon) {
  const b = el("button", `dimnb-btn ${cls}`);
  b.type = "button";
  if (icon) b.innerHTML = icon;
  b.appendChild(el("span", null, text));
  if (title) b.title = title;
  return b;
}

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

function render({ model, el: host }) {
  const root = el("div", "dimnb-filters");
  root.setAttribute("role", "search");
  root.setAttribute("aria-label", "Call filters");

  // ---- row 1: when, direction, outcome, group
  const period = el("select", "dimnb-input dimnb-f-period");
  const start = input("dimnb-f-start", "datetime-local");
  const end = input("dimnb-f-end", "datetime-local");
  const edited = new Set(); // controls changed since the form was last sent
  const timezone = el("select", "dimnb-input dimnb-f-timezone");
  const direction = el("select", "dimnb-input dimnb-f-direction");
  const outcome = el("select", "dimnb-input dimnb-f-outcome");
  const group = el("select", "dimnb-input dimnb-f-group");
  const row1 = el("div", "dimnb-filters-row");
  row1.append(
    field("Period", period, "dimnb-w-period"),
    field("From", start, "dimnb-w-date"),
    field("Until", end, "dimnb-w-date"),
    field("Time zone", timezone, "dimnb-w-zone"),
    field("Direction", direction, "dimnb-w-choice"),
    field("Outcome", outcome, "dimnb-w-choice"),
    field("Group", group, "dimnb-w-group"),
  );

  // ---- row 2: party, duration, recordings, reset, saved filters
  const party = input("dimnb-f-party", "search", "User, extension or number");
  const partyBox = el("div", "dimnb-search");
  const partyIcon = el("span", "dimnb-search-icon");
  partyIcon.innerHTML = ICONS.search;
  partyBox.append(partyIcon, party);
  const minD = input("dimnb-f-min-duration", "text", "shortest");
  const maxD = input("dimnb-f-max-duration", "text", "longest");
  minD.inputMode = maxD.inputMode = "numeric";
  minD.title = "Shortest: seconds, or m:ss";
  maxD.title = "Longest: seconds, or m:ss";
  const durations = el("div", "dimnb-range");
  durations.append(minD, el("span", "dimnb-range-dash", "–"), maxD);
  const recToggle = el("label", "dimnb-toggle");
  const withRec = el("input", "dimnb-f-with-recordings");
  withRec.type = "checkbox";
  recToggle.append(withRec, el("span", "dimnb-switch"), el("span", "dimnb-toggle-text", "Only calls with recordings"));
  const recField = field("", recToggle, "dimnb-w-toggle");
  const reset = button("dimnb-f-reset dimnb-btn-quiet", "Reset", "Clear every filter", ICONS.reset);

  const picker = el("select", "dimnb-input dimnb-saved-picker");
  picker.setAttribute("aria-label", "Saved filters");
  const saveBtn = button("dimnb-saved-save", "Save", "Save the filters over the selected saved filter");
  const saveAsBtn = button("dimnb-saved-save-as", "Save as…", "Save the filters under a new name");
  const editBtn = button("dimnb-saved-edit", "Rename / share…", "Rename the selected saved filter or share it");
  const deleteBtn = button("dimnb-saved-delete dimnb-btn-danger", "Delete", "Delete the selected saved filter");
  const savedBox = el("div", "dimnb-saved");
  const savedIcon = el("span", "dimnb-saved-icon");
  savedIcon.innerHTML = ICONS.bookmark;
  savedBox.append(savedIcon, picker, saveBtn, saveAsBtn, editBtn, deleteBtn);

  const row2 = el("div", "dimnb-filters-row");
  row2.append(
    field("Party", partyBox, "dimnb-w-party"),
    field("Duration (s)", durations, "dimnb-w-range"),
    recField,
    field("", reset, "dimnb-w-reset"),
    el("div", "dimnb-spacer"),
    field("Saved filters", savedBox, "dimnb-w-saved"),
  );

  // ---- the saved-filter editor (save as / rename & share / confirm delete)
  const editor = el("div", "dimnb-saved-editor");
  const editorTitle = el("span", "dimnb-saved-editor-title");
  const nameInput = input("dimnb-saved-name", "text", "Name");
  nameInput.maxLength = 80;
  const share = el("select", "dimnb-input dimnb-saved-share");
  share.setAttribute("aria-label", "Share with");
  const shareField = field("Share with", share, "dimnb-w-share");
  const okBtn = button("dimnb-saved-ok dimnb-btn-primary", "Save");
  const cancelBtn = button("dimnb-saved-cancel dimnb-btn-quiet", "Cancel");
  editor.append(editorTitle, field("Name", nameInput, "dimnb-w-name"), shareField, okBtn, cancelBtn);
  editor.hidden = true;

  const message = el("div", "dimnb-filters-message");
  message.setAttribute("role", "status");
  message.setAttribute("aria-live", "polite");

  root.append(row1, row2, editor, message);
  host.appendChild(root);

  const controls = { period, start, end, timezone, direction, outcome, group, party, min_duration: minD, max_duration: maxD, with_recordings: withRec };
  for (const [name, node] of Object.entries(controls)) node.dataset.field = name;

  // ---- options
  function fillChoices(select, values, anyLabel, current) {
    select.textContent = "";
    select.appendChild(option("", anyLabel));
    for (const v of values) select.appendChild(option(v, cap(v)));
    const wanted = (current || []).join(",");
    if (wanted && !values.includes(wanted)) {
      select.appendChild(option(wanted, current.map(cap).join(" or "))); // several, from a saved filter
    }
    select.value = wanted;
  }

  function fillOptions() {
    const o = model.get("options") || {};
    const f = model.get("form") || {};
    period.textContent = "";
    for (const [value, label] of o.periods || []) period.appendChild(option(value, label));
    // The user's own zone first, then the current IANA zones (the kernel's list: no old aliases).
    timezone.textContent = "";
    const zones = o.timezones || [];
    const mine = el("optgroup");
    mine.label = "Your time zone";
    const all = el("optgroup");
    all.label = "All time zones";
    zones.forEach((z, i) => (i === 0 ? mine : all).appendChild(option(z, z.replace(/_/g, " "))));
    timezone.append(mine, all);
    if (f.timezone && !zones.includes(f.timezone)) timezone.appendChild(option(f.timezone, f.timezone)); // a saved filter's
    fillChoices(direction, o.directions || [], "Any direction", f.direction);
    fillChoices(outcome, o.outcomes || [], "Any outcome", f.outcome);
    recField.hidden = o.may_play === false;
    group.textContent = "";
    group.appendChild(option("", "Any group"));
    for (const g of o.groups || []) group.appendChild(option(g, g));
    if (f.group && !(o.groups || []).includes(f.group)) group.appendChild(option(f.group, f.group));
    share.textContent = "";
    share.appendChild(option("", "Nobody (only me)"));
    for (const g of o.share_groups || []) share.appendChild(option(g, g));
  }

  // ---- the form, as the kernel last accepted it
  function fillForm() {
    // The kernel's normalised values; the control the user is in keeps what they are typing, and so does
    // one they changed after the form was last sent (a slow reply to an earlier change must not undo it).
    const f = model.get("form") || {};
    const o = model.get("options") || {};
    const focused = root.contains(document.activeElement) ? document.activeElement : null;
    const set = (node, fn) => {
      if (node !== focused && !edited.has(node)) fn();
    };
    set(period, () => (period.value = f.period || ""));
    set(start, () => (start.value = f.start || ""));
    set(end, () => (end.value = f.end || ""));
    set(timezone, () => (timezone.value = f.timezone || o.user_zone || "UTC"));
    set(direction, () => fillChoices(direction, o.directions || [], "Any direction", f.direction));
    set(outcome, () => fillChoices(outcome, o.outcomes || [], "Any outcome", f.outcome));
    set(group, () => {
      if (f.group && ![...group.options].some((x) => x.value === f.group)) group.appendChild(option(f.group, f.group));
      group.value = f.group || "";
    });
    set(party, () => (party.value = f.party || ""));
    set(minD, () => (minD.value = f.min_duration || ""));
    set(maxD, () => (maxD.value = f.max_duration || ""));
    set(withRec, () => (withRec.checked = !!f.with_recordings));
    syncDates();
  }

  function syncDates() {
    const relative = period.value !== "" && period.value !== "custom";
    start.disabled = end.disabled = relative;
    root.classList.toggle("dimnb-any-time", period.value === "");
  }

  function readForm() {
    const list = (v) => (v ? v.split(",") : []);
    const custom = period.value === "custom" || period.value === "";
    return {
      period: period.value,
      start: custom ? start.value : "",
      end: custom ? end.value : "",
      timezone: timezone.value,
      direction: list(direction.value),
      outcome: list(outcome.value),
      group: group.value,
      party: party.value,
      min_duration: minD.value,
      max_duration: maxD.value,
      with_recordings: withRec.checked,
    };
  }

  function apply() {
    edited.clear(); // what the user changed goes with this form
    model.send({ type: "apply", form: readForm() });
  }

  for (const node of [period, start, end, timezone, direction, outcome, group, party, minD, maxD, withRec]) {
    node.addEventListener("input", () => edited.add(node));
  }
  period.addEventListener("change", () => {
    if (period.value === "") start.value = end.value = "";
    syncDates();
    apply();
  });
  for (const node of [start, end]) {
    node.addEventListener("change", () => {
      if (period.value === "" && (start.value || end.value)) period.value = "custom";
    });
  }
  for (const node of [start, end, timezone, direction, outcome, group, minD, maxD, withRec]) {
    node.addEventListener("change", apply);
  }
  party.addEventListener("change", apply);
  party.addEventListener("search", apply); // the clear (x) of a search field
  for (const node of [party, minD, maxD]) {
    node.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        apply();
      }
    });
  }
  reset.addEventListener("click", () => {
    edited.clear(); // the reset form replaces everything
    model.send({ type: "reset" });
  });

  // ---- saved filters
  let mode = null; // "save_as" | "update" | "delete"

  function selectedItem() {
    const id = model.get("selected_saved");
    return (model.get("saved") || []).find((s) => s.id === id) || null;
  }

  function fillSaved() {
    const items = model.get("saved") || [];
    const current = model.get("selected_saved");
    picker.textContent = "";
    picker.appendChild(option("", items.length ? "Choose a saved filter…" : "No saved filters yet"));
    const mine = el("optgroup");
    mine.label = "Mine";
    const shared = el("optgroup");
    shared.label = "Shared with me (read-only)";
    for (const s of items) {
      const o = option(String(s.id), s.shared_group && s.editable ? `${s.label}  (shared with ${s.shared_group})` : s.label);
      (s.editable ? mine : shared).appendChild(o);
    }
    if (mine.children.length) picker.appendChild(mine);
    if (shared.children.length) picker.appendChild(shared);
    picker.value = current == null ? "" : String(current);
    const item = selectedItem();
    const editable = !!(item && item.editable);
    saveBtn.disabled = !editable;
    editBtn.disabled = !editable;
    deleteBtn.disabled = !editable;
  }

  function openEditor(which) {
    const item = selectedItem();
    mode = which;
    editor.hidden = false;
    root.classList.add("dimnb-editing");
    nameInput.parentElement.hidden = which === "delete";
    shareField.hidden = which === "delete";
    if (which === "save_as") {
      editorTitle.textContent = "Save these filters as";
      nameInput.value = "";
      share.value = "";
      okBtn.lastChild.textContent = "Save";
    } else if (which === "update" && item) {
      editorTitle.textContent = `Rename or share “${item.name}”`;
      nameInput.value = item.name;
      share.value = item.shared_group || "";
      okBtn.lastChild.textContent = "Apply";
    } else if (which === "delete" && item) {
      editorTitle.textContent = `Delete the saved filter “${item.name}”?`;
      okBtn.lastChild.textContent = "Delete";
    }
    okBtn.classList.toggle("dimnb-btn-danger", which === "delete");
    if (which !== "delete") nameInput.focus();
  }

  function closeEditor() {
    mode = null;
    editor.hidden = true;
    root.classList.remove("dimnb-editing");
  }

  picker.addEventListener("change", () => {
    closeEditor();
    edited.clear(); // so does a saved filter
    model.send({ type: "load_saved", id: picker.value === "" ? null : Number(picker.value) });
  });
  saveBtn.addEventListener("click", () => model.send({ type: "save" }));
  saveAsBtn.addEventListener("click", () => openEditor("save_as"));
  editBtn.addEventListener("click", () => openEditor("update"));
  deleteBtn.addEventListener("click", () => openEditor("delete"));
  cancelBtn.addEventListener("click", closeEditor);
  okBtn.addEventListener("click", () => {
    const item = selectedItem();
    if (mode === "save_as") model.send({ type: "save_as", name: nameInput.value, share_with: share.value });
    else if (mode === "update" && item) model.send({ type: "update", id: item.id, name: nameInput.value, share_with: share.value });
    else if (mode === "delete" && item) model.send({ type: "delete", id: item.id });
    closeEditor();
  });
  nameInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      okBtn.click();
    } else if (ev.key === "Escape") closeEditor();
  });

  // ---- message and the field it names
  function showMessage() {
    const text = model.get("message") || "";
    const kind = model.get("message_kind") || "";
    const bad = model.get("error_field") || "";
    message.textContent = text;
    message.hidden = !text;
    message.className = `dimnb-filters-message${kind ? ` dimnb-msg-${kind}` : ""}`;
    for (const [name, node] of Object.entries(controls)) {
      const invalid = kind === "error" && bad === name;
      node.classList.toggle("dimnb-invalid", invalid);
      node.setAttribute("aria-invalid", invalid ? "true" : "false");
    }
  }

  const handlers = {
    "change:options": () => {
      fillOptions();
      fillForm();
    },
    "change:revision": fillForm,
    "change:saved": fillSaved,
    "change:selected_saved": fillSaved,
    "change:message": showMessage,
    "change:message_kind": showMessage,
    "change:error_field": showMessage,
  };
  for (const [event, fn] of Object.entries(handlers)) model.on(event, fn);
  fillOptions();
  fillForm();
  fillSaved();
  showMessage();
  return () => {
    for (const [event, fn] of Object.entries(handlers)) model.off(event, fn);
  };
}

export default { render };
