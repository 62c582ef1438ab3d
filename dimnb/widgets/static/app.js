// dimnb app header: product, breadcrumbs (Calls › Call 125), the signed-in user, extra links and logout.
// Link targets were checked by the kernel (http(s) or a path on this server); all text is set as textContent.
// It sends {type: "nav", to: "calls"} (back to the call list) or {type: "nav", to: "reports"} (the reports,
// as last shown). "Copy link" (on a session or a report) copies the page's address; where the clipboard is
// refused it shows the address in a text field, selected, to copy by hand.
//
// Stable selectors: div.dimnb-app-header; .dimnb-user (the user's name); a.dimnb-logout; a.dimnb-link;
// .dimnb-crumb-calls (back to the list); .dimnb-back; .dimnb-copy-link; input.dimnb-link-text;
// .dimnb-app-message; a.dimnb-nav-reports (the reports).

const SVG = (body, size = 16) =>
  `<svg viewBox="0 0 24 24" width="${size}" height="${size}" aria-hidden="true" focusable="false">${body}</svg>`;
const LOGO = SVG(
  '<rect x="2" y="2" width="20" height="20" rx="6" fill="currentColor"/>' +
    '<path d="M6 13v-2M9 16V8M12 18V6M15 15V9M18 13v-2" stroke="#fff" stroke-width="2" stroke-linecap="round"/>',
  22,
);
const ICONS = {
  user: SVG('<circle cx="12" cy="8.5" r="3.5" stroke="currentColor" stroke-width="2" fill="none"/><path d="M5 19.5c1.2-3.3 4-5 7-5s5.8 1.7 7 5" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round"/>'),
  logout: SVG('<path d="M10 5H6a1 1 0 0 0-1 1v12a1 1 0 0 0 1 1h4M15 8l4 4-4 4M19 12H10" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>'),
  back: SVG('<path d="M15 5l-7 7 7 7" stroke="currentColor" stroke-width="2.2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>'),
  link: SVG('<path d="M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round"/>'),
  chevron: SVG('<path d="M9 6l6 6-6 6" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>', 14),
};

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

function render({ model, el: host }) {
  const root = el("div", "dimnb-app-header");
  root.setAttribute("role", "banner");
  const left = el("div", "dimnb-app-left");
  const logo = el("span", "dimnb-app-logo");
  logo.innerHTML = LOGO;
  const product = el("span", "dimnb-app-product", "dimnb");
  const crumbs = el("nav", "dimnb-crumbs");
  crumbs.setAttribute("aria-label", "Where you are");
  left.append(logo, product, crumbs);
  const right = el("div", "dimnb-app-right");
  const message = el("div", "dimnb-app-message");
  message.setAttribute("role", "alert");
  root.append(left, right);
  host.append(root, message);

  const linkText = el("input", "dimnb-link-text");
  linkText.readOnly = true;
  linkText.setAttribute("aria-label", "Link to this view");
  linkText.hidden = true;
  host.append(linkText);
  let copied = null;

  async function copyLink(button) {
    const address = location.href;
    try {
      await navigator.clipboard.writeText(address);
      linkText.hidden = true;
      button.lastChild.textContent = "Link copied";
      clearTimeout(copied);
      copied = setTimeout(() => (button.lastChild.textContent = "Copy link"), 2000);
    } catch (e) {
      linkText.value = address; // no clipboard (plain http, or refused): the address to copy by hand
      linkText.hidden = false;
      linkText.focus();
      linkText.select();
    }
  }

  const goCalls = (ev) => {
    if (ev) ev.preventDefault();
    model.send({ type: "nav", to: "calls" });
  };

  const goReports = (ev) => {
    if (ev) ev.preventDefault();
    model.send({ type: "nav", to: "reports" });
  };

  function draw() {
    const view = model.get("view") || "calls";
    crumbs.textContent = "";
    const calls = el(view !== "calls" ? "a" : "span", "dimnb-crumb dimnb-crumb-calls", "Calls");
    linkText.hidden = true;
    if (view !== "calls") {
      calls.href = "#";
      calls.addEventListener("click", goCalls);
      const back = el("button", "dimnb-back");
      back.type = "button";
      back.title = "Back to the call list";
      back.innerHTML = ICONS.back;
      back.appendChild(el("span", null, "Back"));
      back.addEventListener("click", goCalls);
      crumbs.append(back, calls);
      const sep = el("span", "dimnb-crumb-sep");
      sep.innerHTML = ICONS.chevron;
      crumbs.append(sep, el("span", "dimnb-crumb dimnb-crumb-current", model.get("crumb") || "Call"));
      const copy = el("button", "dimnb-copy-link");
      copy.type = "button";
      copy.title = "Copy a link to this view";
      copy.innerHTML = ICONS.link;
      copy.appendChild(el("span", null, "Copy link"));
      copy.addEventListener("click", () => copyLink(copy));
      crumbs.append(copy);
    } else {
      calls.classList.add("dimnb-crumb-current");
      crumbs.append(calls);
    }
    if (view !== "report") {
      const reports = el("a", "dimnb-nav-reports", "Reports");
      reports.href = "#/report/agents"; // a real address for a new tab; a click shows the last report here
      reports.title = "Agent, group, missed-call and activity reports";
      reports.addEventListener("click", goReports);
      crumbs.append(reports);
    }

    right.textContent = "";
    for (const link of model.get("links") || []) {
      const a = el("a", "dimnb-link", link.label);
      a.href = link.url;
      if (!link.url.startsWith("#")) {
        a.target = "_blank"; // a view of this app (#/audit) opens here; anything else in a new tab
        a.rel = "noopener noreferrer";
      }
      right.appendChild(a);
    }
    const user = el("span", "dimnb-user-box");
    const icon = el("span", "dimnb-user-icon");
    icon.innerHTML = ICONS.user;
    const name = el("span", "dimnb-user", model.get("user_name") || model.get("login") || "");
    name.title = `Signed in as ${model.get("login") || ""}`;
    user.append(icon, name);
    right.appendChild(user);
    const logout = model.get("logout_url");
    if (logout) {
      const a = el("a", "dimnb-logout");
      a.href = logout;
      a.innerHTML = ICONS.logout;
      a.appendChild(el("span", null, "Log out"));
      // Signing out is a POST with the XSRF token (a link from another site must not sign anyone out).
      // Without the token cookie the link's page asks, with its own form.
      a.addEventListener("click", (event) => {
        const xsrf = (document.cookie.match(/(?:^|;\s*)_xsrf=([^;]+)/) || [])[1];
        if (!xsrf) return;
        event.preventDefault();
        const form = document.createElement("form");
        form.method = "post";
        form.action = logout;
        const token = document.createElement("input");
        token.type = "hidden";
        token.name = "_xsrf";
        token.value = decodeURIComponent(xsrf);
        form.appendChild(token);
        document.body.appendChild(form);
        form.submit();
      });
      right.appendChild(a);
    }
    const text = model.get("message") || "";
    message.textContent = text;
    message.hidden = !text;
  }

  const events = ["view", "crumb", "links", "user_name", "login", "logout_url", "message"].map((n) => `change:${n}`);
  for (const e of events) model.on(e, draw);
  draw();
  return () => {
    for (const e of events) model.off(e, draw);
  };
}

export default { render };
