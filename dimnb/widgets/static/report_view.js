// dimnb report view: tabs (Agents, Groups, Missed, Activity), parameters, a table whose numbers are links,
// inline-SVG charts for Activity, and CSV/XLSX exports. The kernel computes everything (in the user's scope);
// this view only draws and sends back what the user asked for:
// {type: "show", report, parameters}, {type: "drill", row, column}, {type: "open", row, column},
// {type: "export", format}. The kernel answers an export with {type: "download", filename, mime} + the bytes.
// Strings from the model are only ever set as textContent / attributes, never as HTML.
//
// Stable selectors (browser tests): div.dimnb-reports; tabs button.dimnb-report-tab[data-report];
// parameters select.dimnb-report-period, select.dimnb-report-group, input.dimnb-report-sl,
// input.dimnb-report-window; table rows tr.dimnb-report-row; a number link
// a.dimnb-report-link[data-row][data-column]; a call link a.dimnb-report-call; the total link
// a.dimnb-report-total; charts svg.dimnb-chart-days, svg.dimnb-chart-heat; exports button.dimnb-export-csv,
// button.dimnb-export-xlsx.

const SVG_NS = "http://www.w3.org/2000/svg";
const fmt = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 1 });

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function cellText(value) {
  if (value === null || value === undefined) return "";
  if (value === true) return "yes";
  if (value === false) return "no";
  if (typeof value === "number") return fmt.format(value);
  return String(value);
}

function daysChart(days) {
  const width = 760, height = 180, left = 36, bottom = 22, top = 10;
  const max = Math.max(1, ...days.map((d) => Math.max(d.calls, d.previous)));
  const chart = svg("svg", { class: "dimnb-chart-days", viewBox: `0 0 ${width} ${height}`, role: "img" });
  chart.setAttribute("aria-label", "Calls per day, this period and the previous one");
  const plotW = width - left - 8, plotH = height - top - bottom;
  const step = plotW / Math.max(1, days.length);
  for (const frac of [0, 0.5, 1]) {
    const y = top + plotH * (1 - frac);
    chart.append(svg("line", { x1: left, x2: width - 8, y1: y, y2: y, class: "dimnb-chart-grid" }));
    const label = svg("text", { x: left - 4, y: y + 4, "text-anchor": "end", class: "dimnb-chart-axis" });
    label.textContent = String(Math.round(max * frac));
    chart.append(label);
  }
  days.forEach((d, i) => {
    const x = left + i * step;
    const w = Math.max(1, step * 0.7);
    const h = (plotH * d.calls) / max;
    const bar = svg("rect", { x: x + step * 0.15, y: top + plotH - h, width: w, height: h, class: "dimnb-chart-bar" });
    const title = svg("title");
    title.textContent = `${d.date}: ${d.calls} calls (previous period: ${d.previous})`;
    bar.append(title);
    chart.append(bar);
    const py = top + plotH - (plotH * d.previous) / max;
    chart.append(svg("line", { x1: x + step * 0.1, x2: x + step * 0.9, y1: py, y2: py, class: "dimnb-chart-prev" }));
    if (days.length <= 16 || i % Math.ceil(days.length / 12) === 0) {
      const label = svg("text", { x: x + step / 2, y: height - 6, "text-anchor": "middle", class: "dimnb-chart-axis" });
      label.textContent = String(d.date).slice(5);
      chart.append(label);
    }
  });
  return chart;
}

function heatChart(weekdays, grid) {
  const cell = 26, left = 40, top = 18;
  const width = left + cell * 24 + 4, height = top + cell * 7 + 4;
  const max = Math.max(1, ...grid.flat());
  const chart = svg("svg", { class: "dimnb-chart-heat", viewBox: `0 0 ${width} ${height}`, role: "img" });
  chart.setAttribute("aria-label", "Calls by weekday and hour");
  for (let h = 0; h < 24; h += 3) {
    const label = svg("text", { x: left + h * cell + cell / 2, y: 12, "text-anchor": "middle", class: "dimnb-chart-axis" });
    label.textContent = `${String(h).padStart(2, "0")}h`;
    chart.append(label);
  }
  weekdays.forEach((day, d) => {
    const label = svg("text", { x: left - 6, y: top + d * cell + cell / 2 + 4, "text-anchor": "end", class: "dimnb-chart-axis" });
    label.textContent = day;
    chart.append(label);
    for (let h = 0; h < 24; h++) {
      const n = grid[d][h];
      const rect = svg("rect", {
        x: left + h * cell + 1, y: top + d * cell + 1, width: cell - 2, height: cell - 2, rx: 3,
        class: "dimnb-heat-cell", "fill-opacity": n ? 0.12 + 0.88 * (n / max) : 0.04,
      });
      const title = svg("title");
      title.textContent = `${day} ${String(h).padStart(2, "0")}:00: ${n} calls`;
      rect.append(title);
      chart.append(rect);
    }
  });
  return chart;
}

function render({ model, el: host }) {
  const root = el("div", "dimnb-reports");
  root.setAttribute("role", "region");
  root.setAttribute("aria-label", "Reports");
  const tabs = el("div", "dimnb-report-tabs");
  tabs.setAttribute("role", "tablist");
  const params = el("form", "dimnb-report-params");
  const period = el("select", "dimnb-report-period");
  const group = el("select", "dimnb-report-group");
  const sl = el("input", "dimnb-report-sl");
  sl.type = "number";
  sl.min = "0";
  sl.step = "1";
  const win = el("input", "dimnb-report-window");
  win.type = "number";
  win.min = "0";
  win.step = "1";
  const field = (label, input, cls) => {
    const box = el("label", `dimnb-report-field ${cls || ""}`);
    box.append(el("span", null, label), input);
    return box;
  };
  const slField = field("Answered within (s)", sl, "dimnb-only-groups");
  const winField = field("Call-back window (h)", win, "dimnb-only-missed");
  const exports = el("div", "dimnb-report-exports");
  const csv = el("button", "dimnb-report-button dimnb-export-csv", "Export CSV");
  const xlsx = el("button", "dimnb-report-button dimnb-export-xlsx", "Export XLSX");
  csv.type = xlsx.type = "button";
  exports.append(csv, xlsx);
  params.append(field("Period", period), field("Group", group), slField, winField, exports);
  const head = el("div", "dimnb-report-head");
  const message = el("div", "dimnb-report-message");
  message.setAttribute("role", "alert");
  const charts = el("div", "dimnb-report-charts");
  const tableBox = el("div", "dimnb-report-table-box");
  root.append(tabs, params, message, head, charts, tableBox);
  host.append(root);

  const send = (content) => model.send(content);
  const parameters = () => ({
    period: period.value, group: group.value,
    service_level: sl.value === "" ? null : Number(sl.value),
    window_hours: win.value === "" ? null : Number(win.value),
  });
  const show = (report) => send({ type: "show", report: report || model.get("report"), parameters: parameters() });
  for (const input of [period, group]) input.addEventListener("change", () => show());
  for (const input of [sl, win]) input.addEventListener("change", () => show());
  params.addEventListener("submit", (ev) => { ev.preventDefault(); show(); });
  csv.addEventListener("click", () => send({ type: "export", format: "csv" }));
  xlsx.addEventListener("click", () => send({ type: "export", format: "xlsx" }));

  function options(select, items, value) {
    select.textContent = "";
    for (const item of items) {
      const option = el("option", null, item.label);
      option.value = item.value;
      select.append(option);
    }
    select.value = value || "";
  }

  function draw() {
    const report = model.get("report");
    root.dataset.report = report;
    tabs.textContent = "";
    for (const r of model.get("reports") || []) {
      const tab = el("button", "dimnb-report-tab", r.label);
      tab.type = "button";
      tab.dataset.report = r.name;
      tab.setAttribute("role", "tab");
      tab.setAttribute("aria-selected", String(r.name === report));
      tab.addEventListener("click", () => show(r.name));
      tabs.append(tab);
    }
    const form = model.get("form") || {};
    options(period, model.get("periods") || [], form.period);
    options(group, [{ value: "", label: "All groups" }, ...(model.get("groups") || []).map((g) => ({ value: g, label: g }))],
      form.group);
    sl.value = form.service_level ?? "";
    win.value = form.window_hours ?? "";
    slField.hidden = report !== "groups";
    winField.hidden = report !== "missed";

    const text = model.get("message") || "";
    message.textContent = text;
    message.hidden = !text;
    root.classList.toggle("dimnb-loading", !!model.get("loading"));

    const summary = model.get("summary") || {};
    head.textContent = "";
    if (summary.text) {
      const total = el(summary.link ? "a" : "span", summary.link ? "dimnb-report-total" : "dimnb-report-count", summary.text);
      if (summary.link) {
        total.href = "#";
        total.title = "Show these calls in the Call List";
        total.addEventListener("click", (ev) => { ev.preventDefault(); send({ type: "drill", row: -1, column: "*" }); });
      }
      head.append(total);
      if (summary.detail) head.append(el("span", "dimnb-report-detail", summary.detail));
    }

    charts.textContent = "";
    const chart = model.get("chart") || {};
    if (chart.days) {
      const box = el("figure", "dimnb-chart");
      box.append(el("figcaption", null, "Calls per day (bars) and the previous period (lines)"), daysChart(chart.days));
      charts.append(box);
    }
    if (chart.heat) {
      const box = el("figure", "dimnb-chart");
      box.append(el("figcaption", null, "Calls by weekday and hour"), heatChart(chart.weekdays, chart.heat));
      charts.append(box);
    }

    tableBox.textContent = "";
    const columns = model.get("columns") || [];
    const rows = model.get("rows") || [];
    if (!rows.length) {
      tableBox.append(el("div", "dimnb-report-empty", "No calls in this period."));
      return;
    }
    const table = el("table", "dimnb-report-table");
    const thead = el("thead");
    const hr = el("tr");
    for (const c of columns) {
      const th = el("th", c.numeric ? "dimnb-num" : null, c.label);
      th.scope = "col";
      hr.append(th);
    }
    thead.append(hr);
    const tbody = el("tbody");
    rows.forEach((row, index) => {
      const tr = el("tr", "dimnb-report-row");
      for (const c of columns) {
        const td = el("td", c.numeric ? "dimnb-num" : null);
        const value = row[c.key];
        if (c.link === "drill" && value) {
          const a = el("a", "dimnb-report-link", cellText(value));
          a.href = "#";
          a.dataset.row = String(index);
          a.dataset.column = c.key;
          a.title = "Show these calls in the Call List";
          a.addEventListener("click", (ev) => { ev.preventDefault(); send({ type: "drill", row: index, column: c.key }); });
          td.append(a);
        } else if (c.link === "open" && value) {
          const a = el("a", "dimnb-report-call", cellText(value));
          a.href = "#";
          a.title = "Open this call";
          a.addEventListener("click", (ev) => { ev.preventDefault(); send({ type: "open", row: index, column: c.key }); });
          td.append(a);
        } else {
          td.textContent = cellText(value);
        }
        tr.append(td);
      }
      tbody.append(tr);
    });
    table.append(thead, tbody);
    tableBox.append(table);
  }

  function onMessage(content, buffers) {
    if (!content || content.type !== "download" || !buffers || !buffers.length) return;
    const blob = new Blob([buffers[0]], { type: content.mime || "application/octet-stream" });
    const url = URL.createObjectURL(blob);
    const a = el("a");
    a.href = url;
    a.download = content.filename || "report";
    a.className = "dimnb-report-download";
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 1000);
  }

  const events = ["report", "reports", "form", "periods", "groups", "columns", "rows", "summary", "chart", "loading",
    "message"].map((n) => `change:${n}`);
  for (const e of events) model.on(e, draw);
  model.on("msg:custom", onMessage);
  draw();
  return () => {
    for (const e of events) model.off(e, draw);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
