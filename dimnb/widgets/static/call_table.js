// dimnb Call List table. The kernel sends one page of rows (already in the user's scope, strings formatted
// in the filters' time zone); this view draws them and sends back what the user asked for:
// {type: "sort", column}, {type: "page", page}, {type: "open", call_id}, {type: "play", call_id} (the Play
// marker: the kernel plays the call's first playable recording in the docked player). The kernel decides.
// Strings from the model are only ever set as textContent / attributes, never as HTML.
//
// Stable selectors (browser tests): root div.dimnb-calls; rows tr.dimnb-call-row[data-call-id]; the Start Time
// link a.dimnb-open-session; the Play marker button.dimnb-rec-play; the total .dimnb-total; pager
// .dimnb-page-prev / .dimnb-page-next; headers th[data-sort] (the whole cell sorts); the progress bar
// .dimnb-progress (shown while root has .dimnb-loading).

const SVG = (body, size = 14) =>
  `<svg viewBox="0 0 24 24" width="${size}" height="${size}" aria-hidden="true" focusable="false">${body}</svg>`;
const ICONS = {
  prev: SVG('<path d="M15 5l-7 7 7 7" stroke="currentColor" stroke-width="2.2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>', 16),
  next: SVG('<path d="M9 5l7 7-7 7" stroke="currentColor" stroke-width="2.2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>', 16),
  up: SVG('<path d="M12 6l-6 8h12z" fill="currentColor"/>', 10),
  down: SVG('<path d="M12 18l6-8H6z" fill="currentColor"/>', 10),
  both: SVG('<path d="M12 3l-5 7h10zM12 21l5-7H7z" fill="currentColor"/>', 10),
  inbound: SVG('<path d="M18 6L7 17M7 9v8h8" stroke="currentColor" stroke-width="2.2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>'),
  outbound: SVG('<path d="M6 18L17 7M9 7h8v8" stroke="currentColor" stroke-width="2.2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>'),
  internal: SVG('<path d="M4 9h14l-4-4M20 15H6l4 4" stroke="currentColor" stroke-width="2.2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>'),
  playable: SVG('<path d="M4 9v6h4l5 4V5L8 9z" fill="currentColor"/><path d="M16 8.5a4.5 4.5 0 0 1 0 7" stroke="currentColor" stroke-width="1.8" fill="none" stroke-linecap="round"/>', 16),
  pending: SVG('<circle cx="12" cy="12" r="8.5" stroke="currentColor" stroke-width="2" fill="none"/><path d="M12 7.5V12l3 2.5" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round"/>', 16),
  refresh: SVG('<path d="M19 12a7 7 0 1 1-2.05-4.95M19 5v4h-4" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>', 16),
};
const PLAY_TITLE = "Play this call's recording in the player below";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

function iconButton(cls, label, icon) {
  const b = el("button", `dimnb-calls-button ${cls}`);
  b.type = "button";
  b.title = label;
  b.setAttribute("aria-label", label);
  b.innerHTML = icon;
  return b;
}

const fmt = new Intl.NumberFormat("en-GB");

function render({ model, el: host }) {
  const root = el("div", "dimnb-calls");
  root.setAttribute("role", "region");
  root.setAttribute("aria-label", "Call list");

  // ---- toolbar: total, what is shown, pager
  const bar = el("div", "dimnb-calls-bar");
  const totalBox = el("div", "dimnb-calls-count");
  const total = el("span", "dimnb-total");
  total.setAttribute("aria-live", "polite");
  const summary = el("span", "dimnb-calls-summary");
  totalBox.append(total, summary);
  const pager = el("div", "dimnb-pager");
  const range = el("span", "dimnb-page-range");
  const prev = iconButton("dimnb-page-prev", "Previous page", ICONS.prev);
  const pageLabel = el("span", "dimnb-page-label");
  const next = iconButton("dimnb-page-next", "Next page", ICONS.next);
  const refresh = iconButton("dimnb-calls-refresh", "Refresh", ICONS.refresh);
  pager.append(range, prev, pageLabel, next, refresh);
  bar.append(totalBox, pager);

  const progress = el("div", "dimnb-progress");
  progress.setAttribute("role", "progressbar");
  progress.setAttribute("aria-label", "Loading calls");
  progress.appendChild(el("div", "dimnb-progress-bar"));
  const message = el("div", "dimnb-calls-message");
  message.setAttribute("role", "status");

  const scroller = el("div", "dimnb-calls-scroll");
  const table = el("table", "dimnb-calls-table");
  const thead = el("thead");
  const tbody = el("tbody");
  table.append(thead, tbody);
  scroller.appendChild(table);
  const empty = el("div", "dimnb-calls-empty", "No calls match these filters.");

  root.append(bar, progress, message, scroller, empty);
  host.appendChild(root);

  prev.addEventListener("click", () => model.send({ type: "page", page: (model.get("page") || 1) - 1 }));
  next.addEventListener("click", () => model.send({ type: "page", page: (model.get("page") || 1) + 1 }));
  refresh.addEventListener("click", () => model.send({ type: "refresh" }));

  function drawHead() {
    const columns = model.get("columns") || [];
    const sort = model.get("sort");
    const desc = model.get("descending");
    thead.textContent = "";
    const tr = el("tr");
    for (const c of columns) {
      const th = el("th", `dimnb-col-${c.key} dimnb-kind-${c.kind}`);
      th.scope = "col";
      if (c.sort) {
        th.dataset.sort = c.sort;
        const b = el("button", "dimnb-sort");
        b.type = "button";
        b.appendChild(el("span", null, c.label));
        const arrow = el("span", "dimnb-sort-arrow");
        const active = c.sort === sort;
        arrow.innerHTML = active ? (desc ? ICONS.down : ICONS.up) : ICONS.both;
        b.appendChild(arrow);
        b.title = `Sort by ${c.label}`;
        if (active) {
          th.classList.add("dimnb-sorted");
          th.setAttribute("aria-sort", desc ? "descending" : "ascending");
        }
        // The whole header cell sorts, not only its word (the button keeps keyboard access).
        th.classList.add("dimnb-sortable");
        th.addEventListener("click", () => model.send({ type: "sort", column: c.sort }));
        th.appendChild(b);
      } else {
        th.textContent = c.label;
      }
      tr.appendChild(th);
    }
    thead.appendChild(tr);
  }

  function cell(c, row) {
    const td = el("td", `dimnb-col-${c.key} dimnb-kind-${c.kind}`);
    const value = row[c.key];
    if (c.kind === "link") {
      const a = el("a", "dimnb-open-session", value);
      a.href = "#";
      a.dataset.callId = String(row.call_id);
      a.title = `Open call ${row.call_id} (${row.start_iso || value})`;
      a.addEventListener("click", (ev) => {
        ev.preventDefault();
        model.send({ type: "open", call_id: row.call_id });
      });
      td.appendChild(a);
    } else if (c.kind === "party") {
      td.appendChild(el("div", "dimnb-party", value || "–"));
      const name = row[`${c.key}_name`];
      if (name) td.appendChild(el("div", "dimnb-party-name", name));
    } else if (c.kind === "direction") {
      const chip = el("span", `dimnb-direction dimnb-direction-${value}`);
      if (ICONS[value]) chip.innerHTML = ICONS[value];
      chip.appendChild(el("span", null, value));
      td.appendChild(chip);
    } else if (c.kind === "outcome") {
      td.appendChild(el("span", `dimnb-outcome dimnb-outcome-${value}`, value));
    } else if (c.kind === "recording") {
      if (value === "playable") {
        const mark = el("button", "dimnb-rec-marker dimnb-rec-playable dimnb-rec-play");
        mark.type = "button";
        mark.innerHTML = ICONS.playable;
        mark.title = PLAY_TITLE;
        mark.setAttribute("aria-label", `Play call ${row.call_id}`);
        mark.appendChild(el("span", "dimnb-rec-text", "Play"));
        mark.addEventListener("click", (ev) => {
          ev.preventDefault();
          model.send({ type: "play", call_id: row.call_id });
        });
        td.appendChild(mark);
      }
    } else {
      td.textContent = value == null || value === "" ? (c.kind === "duration" ? "" : "–") : String(value);
    }
    return td;
  }

  function drawRows() {
    const columns = model.get("columns") || [];
    const rows = model.get("rows") || [];
    tbody.textContent = "";
    for (const row of rows) {
      const tr = el("tr", "dimnb-call-row");
      tr.dataset.callId = String(row.call_id);
      if (row.recording) tr.classList.add(`dimnb-has-rec-${row.recording}`);
      for (const c of columns) tr.appendChild(cell(c, row));
      tbody.appendChild(tr);
    }
    const loading = model.get("loading");
    empty.hidden = rows.length > 0 || loading || !!model.get("message");
    scroller.hidden = rows.length === 0;
    drawBar();
  }

  function drawBar() {
    const n = model.get("total") || 0;
    const counting = model.get("counting");
    const page = model.get("page") || 1;
    const pages = model.get("pages") || 1;
    const size = model.get("page_size") || 50;
    const rows = (model.get("rows") || []).length;
    const capped = !counting && !!model.get("total_capped"); // more than n match: counted up to a cap
    total.textContent = counting ? "Counting calls…"
      : capped ? `more than ${fmt.format(n)} calls` : `${n} ${n === 1 ? "call" : "calls"}`; // plain digits: tests read them
    total.dataset.total = counting ? "" : String(n);
    total.dataset.capped = capped ? "true" : "";
    const tz = model.get("timezone") || "UTC";
    const what = model.get("summary") || "";
    summary.textContent = what ? `${what} · times in ${tz}` : `times in ${tz}`;
    const first = rows ? (page - 1) * size + 1 : 0;
    range.textContent = rows ? `${fmt.format(first)}–${fmt.format(first + rows - 1)}` : "";
    pageLabel.textContent = `Page ${fmt.format(page)} of ${counting ? "…" : fmt.format(pages) + (capped ? "+" : "")}`;
    prev.disabled = page <= 1;
    next.disabled = counting || capped ? rows < size : page >= pages;
  }

  function drawState() {
    const loading = !!model.get("loading");
    root.classList.toggle("dimnb-loading", loading);
    root.setAttribute("aria-busy", loading ? "true" : "false");
    progress.hidden = !loading;
    const text = model.get("message") || "";
    message.textContent = text;
    message.hidden = !text;
    drawRows();
  }

  const handlers = {
    "change:columns": () => {
      drawHead();
      drawRows();
    },
    "change:sort": drawHead,
    "change:descending": drawHead,
    "change:rows": drawRows,
    "change:total": drawBar,
    "change:total_capped": drawBar,
    "change:counting": drawBar,
    "change:page": drawBar,
    "change:pages": drawBar,
    "change:summary": drawBar,
    "change:timezone": drawBar,
    "change:loading": drawState,
    "change:message": drawState,
  };
  for (const [event, fn] of Object.entries(handlers)) model.on(event, fn);
  drawHead();
  drawState();
  return () => {
    for (const [event, fn] of Object.entries(handlers)) model.off(event, fn);
  };
}

export default { render };
