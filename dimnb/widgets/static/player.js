// dimnb docked player. The kernel decides what plays (trait `source`); this view plays it.
// Browser tests find the media element as `audio.dimnb-audio` (currentTime, paused, volume, muted).
// Strings from the model are only ever set as textContent / attributes, never as HTML.

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

function clock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "0:00";
  const whole = Math.floor(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
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
  controls.append(playBtn, time, seek, muteBtn, vol, speed, dlBtn);
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
    for (const c of [playBtn, seek, dlBtn]) c.disabled = !ready;
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

  playBtn.addEventListener("click", () => {
    if (audio.paused || audio.ended) {
      autoplay = true;
      if (pendingStart !== null) startWhenReady();
      audio.play().catch(() => report("paused"));
    } else audio.pause();
  });
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
  audio.addEventListener("durationchange", showTime);
  audio.addEventListener("play", onPlay);
  audio.addEventListener("pause", onPause);
  audio.addEventListener("ended", onEnded);
  audio.addEventListener("error", onError);

  const onSource = () => applySource(false);
  model.on("change:source", onSource);
  model.on("change:message", showMessage);
  model.on("change:volume", applyPrefs);
  model.on("change:muted", applyPrefs);
  model.on("change:rate", applyPrefs);
  model.on("msg:custom", onCustom);

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
    audio.pause();
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    for (const u of tempUrls) URL.revokeObjectURL(u);
  };
}

export default { render };
