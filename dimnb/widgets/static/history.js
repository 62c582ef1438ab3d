// dimnb history: keeps the page's address (#/calls?..., #/call/473, #/report/agents?...) and the kernel in step.
// Kernel → browser: the "fragment" of the view on show; "replace" says whether it replaces the current
// history entry (opening a link, Back/Forward) or pushes a new one (the user went somewhere).
// Browser → kernel: {type: "navigate", fragment} when the page opens with an address, and on Back, Forward
// or an edited address. The kernel validates it; nothing here decides what is shown.

function decoded(text) {
  try {
    return decodeURIComponent(text);
  } catch (e) {
    return text;
  }
}
const current = () => decoded(location.hash.replace(/^#/, ""));

function render({ model, el }) {
  el.style.display = "none";
  let lastSent = null;
  let inFlight = false; // a navigate the kernel has not answered yet: its fragment is not the page's yet

  function send(fragment) {
    lastSent = fragment;
    inFlight = true;
    model.send({ type: "navigate", fragment });
  }

  function follow(replace = model.get("replace")) {
    const wanted = model.get("fragment") || "";
    if (!wanted) return;
    if (current() === decoded(wanted)) return;
    const url = `${location.pathname}${location.search}#${wanted}`;
    if (replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
  }

  function onAddress() {
    const fragment = location.hash.replace(/^#/, "");
    // Back to what the kernel shows: nothing to do, unless an answer is still on its way (it would be
    // for the address just left, and must not be the last word).
    if (!inFlight && decoded(fragment) === decoded(model.get("fragment") || "")) return;
    if (fragment === lastSent) return; // popstate and hashchange both fire for one edited address
    send(fragment);
  }

  const onPop = () => {
    lastSent = null;
    onAddress();
  };
  window.addEventListener("popstate", onPop);
  window.addEventListener("hashchange", onAddress);
  const onChange = () => {
    inFlight = false;
    follow();
  };
  model.on("change:fragment", onChange);
  const onMessage = (msg) => {
    if (msg && msg.type === "follow") {
      inFlight = false;
      follow(!!msg.replace);
    }
  };
  model.on("msg:custom", onMessage);

  if (location.hash.length > 1) send(location.hash.replace(/^#/, ""));
  else follow();

  return () => {
    window.removeEventListener("popstate", onPop);
    window.removeEventListener("hashchange", onAddress);
    model.off("change:fragment", onChange);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
