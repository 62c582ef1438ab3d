// dimnb docked player. The kernel decides what plays (trait `source`); this view plays it.
// Browser tests find the media element as `audio.dimnb-audio` (currentTime, paused, volume, muted).
// Strings from the model are only ever set as textContent / attributes, never as HTML.
//
// In the page (no kernel round trip): while audio plays the player announces its position as a window event
// "dimnb-player:time" {recordingId, callId, time, duration, playing} (session views draw their playhead from
// it), and it seeks on a "dimnb-player:seek" {recordingId, seconds} for the recording it holds (a scrub on a
// waveform), setting detail.handled. Keys, when focus is not in a text field: space play/pause, ←/→ 5 s.
// A user without a playback grant (trait `enabled` false) gets no player at all.

const SVG = (body) =>
  `<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false">${body}</svg>`;
const ICONS = {
  play: SVG('<path d="M8 5v14l11-7z" fill="currentColor"/>'),
  pause: SVG('<path d="M7 5h4v14H7zM13 5h4v14h-4z" fill="currentColor"/>'),
  volume: SVG(
    '<path d="M4 9v6h4l5 4V5L8 9z" fill="currentColor"/>' +
      '<path d="M16 8.5a4.5 4.5 0 0 1 0 7M18.5 6a8 8 0 0 1 0 12" stroke="currentColor" stroke-width="1.8" fill="none" stroke-linecap="round"/>',
  ),
  muted: SVG(
    '<path d="M4 9v6h4l5 4V5L8 9z" fill="currentColor"/>' +
      '<path d="M16 9l5 6M21 9l-5 6" stroke="currentColor" stroke-width="1.8" stroke-linecap="round"/>',
  ),
  download: SVG(
    '<path d="M12 4v11M7 10l5 5 5-5" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round" stroke-linejoin="round"/>' +
      '<path d="M5 19h14" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>',
  ),
};
const RATES = [0.5, 0.75, 1, 1.25, 1.5, 2];
const SKIP_SECONDS = 10;
const KEY_SECONDS = 5;
const TIME_EVENT = "dimnb-player:time";
const SEEK_EVENT = "dimnb-player:seek";

// Keys typed into a field are the field's: only a page-level key press drives the player.
function typingIn(target) {
  if (!target || !(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
}

function clock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "0:00";
  const whole = Math.floor(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function SKIP_ICON(sign) {
  const back = sign === "-";
  return (
    '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false">' +
    `<path d="${back ? "M12 5a7 7 0 1 1-6.6 4.7M5 4v5h5" : "M12 5a7 7 0 1 0 6.6 4.7M19 4v5h-5"}" ` +
    'stroke="currentColor" stroke-width="1.8" fill="none" stroke-linecap="round" stroke-linejoin="round"/>' +
    '<text x="12" y="15.5" font-size="8" font-weight="700" text-anchor="middle" fill="currentColor" ' +
    'font-family="sans-serif">10</text></svg>'
  );
}

function button(cls, label, icon) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = `dimnb-player-button ${cls}`;
  b.title = label;
  b.setAttribute("aria-label", label);
  b.innerHTML = icon;
  return b;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "dimnb-player";
  root.setAttribute("role", "region");
  root.setAttribute("aria-label", "Audio player");

  const audio = document.createElement("audio");
  audio.className = "dimnb-audio";
  audio.preload = "auto";

  const playBtn = button("dimnb-player-play", "Play", ICONS.play);
  const time = document.createElement("span");
  time.className = "dimnb-player-time";
  time.textContent = "0:00 / 0:00";
  const seek = document.createElement("input");
  seek.type = "range";
  seek.className = "dimnb-player-seek";
  seek.min = "0";
  seek.max = "0";
  seek.step = "0.01";
  seek.value = "0";
  seek.setAttribute("aria-label", "Position");
  const muteBtn = button("dimnb-player-mute", "Mute", ICONS.volume);
  const vol = document.createElement("input");
  vol.type = "range";
  vol.className = "dimnb-player-volume";
  vol.min = "0";
  vol.max = "1";
  vol.step = "0.05";
  vol.setAttribute("aria-label", "Volume");
  const speed = document.createElement("select");
  speed.className = "dimnb-player-rate";
  speed.setAttribute("aria-label", "Playback speed");
  for (const r of RATES) {
    const o = document.createElement("option");
    o.value = String(r);
    o.textContent = `${r}×`;
    speed.appendChild(o);
  }
  const dlBtn = button("dimnb-player-download", "Download", ICONS.download);
  const backBtn = button("dimnb-player-back10", `Back ${SKIP_SECONDS} s (←: ${KEY_SECONDS} s)`, SKIP_ICON("-"));
  const fwdBtn = button("dimnb-player-fwd10", `Forward ${SKIP_SECONDS} s (→: ${KEY_SECONDS} s)`, SKIP_ICON("+"));
  const info = document.createElement("div");
  info.className = "dimnb-player-info";
  const title = document.createElement("span");
  title.className = "dimnb-player-title";
  const segment = document.createElement("span");
  segment.className = "dimnb-player-segment";
  info.append(title, segment);
  const message = document.createElement("div");
  message.className = "dimnb-player-message";
  message.setAttribute("role", "status");

  const controls = document.createElement("div");
  controls.className = "dimnb-player-controls";
  controls.append(backBtn, playBtn, fwdBtn, time, seek, muteBtn, vol, speed, dlBtn);
  root.append(audio, info, controls, message);
  el.appendChild(root);

  let loadedPlayId = null; // the play whose audio this view holds (or is fetching)
  let blobUrl = null;
  let blobPlayId = null;
  let pendingStart = null; // seek here once the audio can play
  let autoplay = false;
  let dragging = false;
  const tempUrls = new Set();

  const src = () => model.get("source") || {};
  const report = (state) => {
    if (model.get("state") !== state) {
      model.set("state", state);
      model.save_changes();
    }
  };

  function showInfo() {
    const s = src();
    title.textContent = s.play_id ? s.call || "" : "Nothing playing";
    segment.textContent = s.play_id ? s.segment || "" : "";
    root.dataset.playId = s.play_id || "";
    root.dataset.recordingId = s.recording_id != null ? String(s.recording_id) : "";
    const ready = Boolean(s.play_id);
    for (const c of [playBtn, seek, dlBtn, backBtn, fwdBtn]) c.disabled = !ready;
  }

  function showMessage() {
    const text = model.get("message") || "";
    message.textContent = text;
    message.hidden = !text;
  }

  function startWhenReady() {
    if (audio.readyState >= 1 && pendingStart !== null) {
      const at = Math.min(pendingStart, Number.isFinite(audio.duration) ? audio.duration : pendingStart);
      pendingStart = null;
      audio.currentTime = at;
      if (autoplay) {
        audio.play().catch((e) => {
          report("paused");
          console.warn("dimnb player: play() refused", e);
        });
      }
    }
  }

  function applySource(isInitial) {
    const s = src();
    showInfo();
    if (!s.play_id) {
      loadedPlayId = null;
      audio.pause();
      audio.removeAttribute("src");
      audio.load();
      report("idle");
      return;
    }
    if (s.play_id === loadedPlayId) return;
    loadedPlayId = s.play_id;
    pendingStart = Number(s.start_at) || 0;
    autoplay = !isInitial; // a re-rendered view does not start playing by itself
    seek.max = String(s.duration_seconds || 0);
    if (s.url) {
      audio.src = s.url;
      audio.load();
    } else {
      report("loading");
      model.send({ type: "need_audio", play_id: s.play_id });
    }
  }

  function onCustom(msg, buffers) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "audio" && msg.play_id === loadedPlayId && buffers && buffers.length) {
      if (blobUrl) URL.revokeObjectURL(blobUrl);
      blobUrl = URL.createObjectURL(new Blob([buffers[0]], { type: msg.mime || "audio/wav" }));
      blobPlayId = msg.play_id;
      audio.src = blobUrl;
      audio.load();
    } else if (msg.type === "command" && msg.play_id === loadedPlayId) {
      if (msg.command === "pause") audio.pause();
      else if (msg.command === "resume") audio.play().catch(() => report("paused"));
      else if (msg.command === "seek" && Number.isFinite(msg.seconds)) {
        if (audio.readyState >= 1) audio.currentTime = Math.min(msg.seconds, audio.duration || msg.seconds);
        else pendingStart = msg.seconds;
      } else if (msg.command === "download") download();
    } else if (msg.type === "download" && msg.play_id === loadedPlayId) {
      let url = blobPlayId === msg.play_id ? blobUrl : null;
      if (buffers && buffers.length) {
        url = URL.createObjectURL(new Blob([buffers[0]], { type: msg.mime || "application/octet-stream" }));
        tempUrls.add(url);
      }
      if (url) save(url, msg.name || "recording");
    }
  }

  function save(url, name) {
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.className = "dimnb-download-link";
    a.style.display = "none";
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  function download() {
    const s = src();
    if (!s.play_id) return;
    if (s.download_url) save(s.download_url, s.download_name || "");
    else model.send({ type: "download", play_id: s.play_id, have: blobPlayId === s.play_id && blobUrl !== null });
  }

  function showTime() {
    const duration = Number.isFinite(audio.duration) ? audio.duration : Number(src().duration_seconds) || 0;
    if (!dragging) {
      seek.max = String(duration);
      seek.value = String(audio.currentTime || 0);
    }
    time.textContent = `${clock(dragging ? Number(seek.value) : audio.currentTime)} / ${clock(duration)}`;
  }

  function showPlaying() {
    const playing = !audio.paused && !audio.ended;
    playBtn.innerHTML = playing ? ICONS.pause : ICONS.play;
    playBtn.title = playing ? "Pause" : "Play";
    playBtn.setAttribute("aria-label", playBtn.title);
  }

  function applyPrefs() {
    const v = Number(model.get("volume"));
    audio.volume = Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 1;
    vol.value = String(audio.volume);
    audio.muted = model.get("muted") === true;
    muteBtn.innerHTML = audio.muted ? ICONS.muted : ICONS.volume;
    muteBtn.title = audio.muted ? "Unmute" : "Mute";
    muteBtn.setAttribute("aria-label", muteBtn.title);
    const r = Number(model.get("rate"));
    audio.playbackRate = RATES.includes(r) ? r : 1;
    audio.defaultPlaybackRate = audio.playbackRate;
    speed.value = String(audio.playbackRate);
  }

  function toggle() {
    if (!src().play_id) return;
    if (audio.paused || audio.ended) {
      autoplay = true;
      if (pendingStart !== null) startWhenReady();
      audio.play().catch(() => report("paused"));
    } else audio.pause();
  }

  function seekTo(seconds) {
    if (!src().play_id || !Number.isFinite(seconds)) return;
    const duration = Number.isFinite(audio.duration) ? audio.duration : Number(src().duration_seconds) || 0;
    const at = Math.max(0, Math.min(seconds, duration || seconds));
    if (audio.readyState >= 1) audio.currentTime = at;
    else pendingStart = at;
    showTime();
    announce();
  }

  const skip = (delta) => seekTo((pendingStart !== null ? pendingStart : audio.currentTime) + delta);

  // Where the audio is, for the session views' playheads (every frame while playing, and on every change).
  let frame = null;
  function announce() {
    const s = src();
    window.dispatchEvent(new CustomEvent(TIME_EVENT, { detail: {
      recordingId: s.play_id ? s.recording_id : null,
      callId: s.play_id ? s.call_id : null,
      time: pendingStart !== null ? pendingStart : audio.currentTime || 0,
      duration: Number.isFinite(audio.duration) ? audio.duration : Number(s.duration_seconds) || 0,
      playing: !audio.paused && !audio.ended,
    } }));
  }
  function tick() {
    announce();
    frame = !audio.paused && !audio.ended ? requestAnimationFrame(tick) : null;
  }
  const onSeekEvent = (ev) => {
    const d = (ev && ev.detail) || {};
    const s = src();
    if (!s.play_id || d.recordingId !== s.recording_id || !Number.isFinite(d.seconds)) return;
    d.handled = true;
    seekTo(d.seconds);
  };

  // One player in the page answers the keys: the last one drawn.
  const keyOwner = {};
  window.dimnbPlayerKeys = keyOwner;
  const onKey = (ev) => {
    if (window.dimnbPlayerKeys !== keyOwner || !model.get("enabled") || !src().play_id) return;
    if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey || typingIn(ev.target)) return;
    if (ev.key === " " || ev.code === "Space") {
      ev.preventDefault();
      if (ev.target instanceof HTMLElement && ev.target.tagName === "BUTTON") ev.target.blur(); // no second click
      toggle();
    } else if (ev.key === "ArrowLeft") {
      ev.preventDefault();
      skip(-KEY_SECONDS);
    } else if (ev.key === "ArrowRight") {
      ev.preventDefault();
      skip(KEY_SECONDS);
    }
  };
  document.addEventListener("keydown", onKey);
  window.addEventListener(SEEK_EVENT, onSeekEvent);

  playBtn.addEventListener("click", toggle);
  backBtn.addEventListener("click", () => skip(-SKIP_SECONDS));
  fwdBtn.addEventListener("click", () => skip(SKIP_SECONDS));
  seek.addEventListener("input", () => {
    dragging = true;
    showTime();
  });
  seek.addEventListener("change", () => {
    dragging = false;
    audio.currentTime = Number(seek.value);
    showTime();
  });
  muteBtn.addEventListener("click", () => {
    model.set("muted", !audio.muted);
    model.save_changes();
    applyPrefs();
  });
  vol.addEventListener("input", () => {
    model.set("volume", Number(vol.value));
    if (Number(vol.value) > 0 && audio.muted) model.set("muted", false);
    model.save_changes();
    applyPrefs();
  });
  speed.addEventListener("change", () => {
    model.set("rate", Number(speed.value));
    model.save_changes();
    applyPrefs();
  });
  dlBtn.addEventListener("click", download);

  const onMeta = () => {
    startWhenReady();
    showTime();
  };
  const onPlay = () => {
    showPlaying();
    report("playing");
    if (frame === null) frame = requestAnimationFrame(tick);
  };
  const onPause = () => {
    showPlaying();
    if (!audio.ended) report("paused");
  };
  const onEnded = () => {
    showPlaying();
    report("ended");
  };
  const onError = () => {
    if (!audio.getAttribute("src")) return;
    report("error");
    model.send({ type: "error", text: audio.error ? `${audio.error.code} ${audio.error.message}` : "" });
  };
  audio.addEventListener("loadedmetadata", onMeta);
  audio.addEventListener("canplay", onMeta);
  audio.addEventListener("timeupdate", showTime);
  audio.addEventListener("timeupdate", announce); // also where frames do not run (a background tab)
  audio.addEventListener("seeked", announce);
  audio.addEventListener("pause", announce);
  audio.addEventListener("durationchange", showTime);
  audio.addEventListener("play", onPlay);
  audio.addEventListener("pause", onPause);
  audio.addEventListener("ended", onEnded);
  audio.addEventListener("error", onError);

  const onSource = () => {
    applySource(false);
    announce();
  };
  const showEnabled = () => {
    const enabled = model.get("enabled") !== false;
    root.hidden = !enabled;
    el.classList.toggle("dimnb-player-none", !enabled);
    if (!enabled) audio.pause();
  };
  model.on("change:source", onSource);
  model.on("change:message", showMessage);
  model.on("change:enabled", showEnabled);
  model.on("change:volume", applyPrefs);
  model.on("change:muted", applyPrefs);
  model.on("change:rate", applyPrefs);
  model.on("msg:custom", onCustom);

  showEnabled();
  applyPrefs();
  showMessage();
  applySource(true);
  showTime();
  showPlaying();

  return () => {
    model.off("change:source", onSource);
    model.off("change:message", showMessage);
    model.off("change:volume", applyPrefs);
    model.off("change:muted", applyPrefs);
    model.off("change:rate", applyPrefs);
    model.off("msg:custom", onCustom);
    model.off("change:enabled", showEnabled);
    document.removeEventListener("keydown", onKey);
    window.removeEventListener(SEEK_EVENT, onSeekEvent);
    if (window.dimnbPlayerKeys === keyOwner) window.dimnbPlayerKeys = null;
    if (frame !== null) cancelAnimationFrame(frame);
    audio.pause();
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    for (const u of tempUrls) URL.revokeObjectURL(u);
  };
}

export default { render };
