// dimnb Call Session view: the call's segments, conference members and recordings on one clock.
// All data comes from the kernel (trait `session`, built for the kernel's user); strings are set as
// textContent only. A click on a recording sends {type: "play", recording_id, offset_seconds};
// a click elsewhere on a track sends {type: "play_at", call_seconds}. The kernel decides.
//
// The playhead: the docked player announces its position as the window event "dimnb-player:time"
// ({recordingId, time, ...}); when that recording is on show, a line moves across its bar
// (.dimnb-playhead) and across the whole timeline (.dimnb-timeline-playhead). Dragging on a playable
// recording scrubs: the player seeks as the pointer moves ("dimnb-player:seek") when it holds that
// recording; otherwise the drop point is played (a {type: "play"} to the kernel, as a click).

const NS = "http://www.w3.org/2000/svg";
const ICON_PLAY =
  '<svg viewBox="0 0 24 24" width="12" height="12" aria-hidden="true"><path d="M8 5v14l11-7z" fill="currentColor"/></svg>';
const ICON_CLOCK =
  '<svg viewBox="0 0 24 24" width="12" height="12" aria-hidden="true"><circle cx="12" cy="12" r="9" stroke="currentColor" stroke-width="2" fill="none"/><path d="M12 7v5l3 3" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round"/></svg>';

function clock(seconds) {
  if (!Number.isFinite(seconds)) return "?";
  const neg = seconds < 0;
  const whole = Math.round(Math.abs(seconds));
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return (neg ? "-" : "") + (h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`);
}

function div(cls, text) {
  const d = document.createElement("div");
  if (cls) d.className = cls;
  if (text != null) d.textContent = text;
  return d;
}

function wallClock(session, seconds) {
  const s = session.summary || {};
  const start = Date.parse(s.start_time || "");
  if (!Number.isFinite(start) || !Number.isFinite(seconds)) return "";
  try {
    return new Date(start + seconds * 1000).toLocaleTimeString("en-GB", { timeZone: s.timezone || "UTC" });
  } catch (e) {
    return new Date(start + seconds * 1000).toISOString().slice(11, 19) + " UTC";
  }
}

function extent(session) {
  let end = Number((session.summary || {}).duration_seconds) || 0;
  for (const g of session.segments || []) end = Math.max(end, Number(g.end_seconds) || 0);
  for (const r of session.recordings || []) end = Math.max(end, Number(r.end_seconds) || 0);
  for (const c of session.conferences || []) end = Math.max(end, Number(c.end_seconds) || 0);
  return Math.max(end, 1);
}

function tickStep(total) {
  for (const step of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]) {
    if (total / step <= 10) return step;
  }
  return 7200;
}

// A segment row names the agent (the side that is a directory user), not a caller cut off by the row's width.
function agentOf(g) {
  const from = g.from || {};
  const to = g.to || {};
  if (to.login) return to.label;
  if (from.login) return from.label;
  return to.label || from.label || g.label || "";
}

function waveform(values) {
  // One vertical line per column, mirrored around the middle; the SVG stretches with the bar.
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "dimnb-wave");
  svg.setAttribute("viewBox", `0 0 ${values.length} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  let d = "";
  values.forEach((v, i) => {
    const h = Math.max(1, Math.min(1, Number(v) || 0) * 46);
    d += `M${i + 0.5} ${50 - h}V${50 + h}`;
  });
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", d);
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "0.8");
  path.setAttribute("vector-effect", "non-scaling-stroke");
  svg.appendChild(path);
  return svg;
}

const SEEK_EVENT = "dimnb-player:seek";
const TIME_EVENT = "dimnb-player:time";
const DRAG_PIXELS = 4;

function render({ model, el }) {
  const root = div("dimnb-session");
  let heard = null; // the player's last announced position ({recordingId, time, ...})
  el.appendChild(root);
  const tooltip = div("dimnb-session-tooltip");
  tooltip.hidden = true;

  function place(node, from, to, total) {
    const a = Math.max(0, Math.min(from, total));
    const b = Math.max(a, Math.min(to, total));
    node.style.left = `${(a / total) * 100}%`;
    node.style.width = `${Math.max(((b - a) / total) * 100, 0.25)}%`;
  }

  function row(label, cls) {
    const r = div(`dimnb-row ${cls || ""}`);
    const l = div("dimnb-row-label", label);
    l.title = label;
    const t = div("dimnb-row-track");
    r.append(l, t);
    return [r, t];
  }

  function hover(track, describe) {
    track.addEventListener("mousemove", (ev) => {
      const box = track.getBoundingClientRect();
      const f = Math.min(1, Math.max(0, (ev.clientX - box.left) / box.width));
      const lines = describe(f, ev);
      tooltip.textContent = "";
      for (const line of lines) tooltip.appendChild(div(null, line));
      tooltip.hidden = false;
      const rb = root.getBoundingClientRect();
      tooltip.style.left = `${Math.min(ev.clientX - rb.left + 12, rb.width - 240)}px`;
      // Below the pointer, or above it where the view would clip it (the last track).
      let top = ev.clientY - rb.top + 14;
      if (top + tooltip.offsetHeight > rb.height) top = Math.max(0, ev.clientY - rb.top - tooltip.offsetHeight - 10);
      tooltip.style.top = `${top}px`;
      cursor.hidden = false;
      const tb = timeline.getBoundingClientRect();
      cursor.style.left = `${ev.clientX - tb.left}px`;
    });
    track.addEventListener("mouseleave", () => {
      tooltip.hidden = true;
      cursor.hidden = true;
    });
  }

  let timeline = div("dimnb-timeline");
  let cursor = div("dimnb-cursor");
  let playhead = div("dimnb-timeline-playhead");
  let drawnTotal = 1;
  const barHead = div("dimnb-playhead");

  // Where the player is, if it holds one of this session's recordings: a line on its bar and on the timeline.
  function showPlayhead() {
    const session = model.get("session") || {};
    const rec = heard && (session.recordings || []).find((r) => r.recording_id === heard.recordingId);
    root.classList.toggle("dimnb-playing", Boolean(rec && heard.playing));
    if (!rec || !(rec.duration_seconds > 0)) {
      barHead.remove();
      playhead.hidden = true;
      return;
    }
    const t = Math.max(0, Math.min(Number(heard.time) || 0, rec.duration_seconds));
    const bar = root.querySelector(`.dimnb-rec[data-recording-id="${rec.recording_id}"]`);
    if (bar) {
      if (barHead.parentNode !== bar) bar.appendChild(barHead);
      barHead.style.left = `${(t / rec.duration_seconds) * 100}%`;
    } else barHead.remove();
    // the timeline's line, in the tracks' coordinates (they start after the row labels), from the axis to the
    // last recording
    const tracks = timeline.querySelectorAll(".dimnb-row-track");
    if (!tracks.length) return;
    const tb = timeline.getBoundingClientRect();
    const kb = tracks[0].getBoundingClientRect();
    const bottom = tracks[tracks.length - 1].getBoundingClientRect().bottom;
    const at = (rec.offset_seconds + t) / drawnTotal;
    playhead.hidden = false;
    playhead.style.left = `${kb.left - tb.left + at * kb.width}px`;
    playhead.style.top = `${kb.top - tb.top}px`;
    playhead.style.height = `${Math.max(0, bottom - kb.top)}px`;
    playhead.dataset.seconds = String(Math.round((rec.offset_seconds + t) * 10) / 10);
  }
  const onHeard = (ev) => {
    heard = (ev && ev.detail) || null;
    showPlayhead();
  };
  window.addEventListener(TIME_EVENT, onHeard);

  // Press, drag and release on a playable recording: scrub (or, without a drag, play from the point).
  function scrubbable(bar, rec) {
    let start = null;
    let dragged = false;
    const fraction = (ev) => {
      const box = bar.getBoundingClientRect();
      return Math.min(1, Math.max(0, (ev.clientX - box.left) / box.width));
    };
    const seekHere = (ev) => {
      const detail = { recordingId: rec.recording_id, seconds: fraction(ev) * rec.duration_seconds, handled: false };
      window.dispatchEvent(new CustomEvent(SEEK_EVENT, { detail }));
      return detail.handled;
    };
    bar.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0) return;
      start = ev.clientX;
      dragged = false;
      bar.setPointerCapture(ev.pointerId);
    });
    bar.addEventListener("pointermove", (ev) => {
      if (start === null) return;
      if (!dragged && Math.abs(ev.clientX - start) < DRAG_PIXELS) return;
      dragged = true;
      bar.classList.add("dimnb-scrubbing");
      seekHere(ev);
    });
    const finish = (ev, cancelled) => {
      if (start === null) return;
      start = null;
      bar.classList.remove("dimnb-scrubbing");
      if (bar.hasPointerCapture(ev.pointerId)) bar.releasePointerCapture(ev.pointerId);
      if (!dragged || cancelled) return;
      bar.dataset.dragged = "1"; // the click that follows the release is not a second request
      if (!seekHere(ev)) {
        model.send({ type: "play", recording_id: rec.recording_id, offset_seconds: fraction(ev) * rec.duration_seconds });
      }
    };
    bar.addEventListener("pointerup", (ev) => finish(ev, false));
    bar.addEventListener("pointercancel", (ev) => finish(ev, true));
  }

  function draw() {
    const session = model.get("session") || {};
    const peaks = model.get("peaks") || {};
    const selected = model.get("selected") || {};
    const message = model.get("message") || "";
    root.textContent = "";
    const msg = div("dimnb-session-message", message);
    msg.setAttribute("role", "status");
    msg.hidden = !message;
    root.appendChild(msg);
    if (!session.summary) {
      root.dataset.callId = "";
      if (!message) root.appendChild(div("dimnb-session-empty", "Open a call to see its session."));
      return;
    }
    const s = session.summary;
    root.dataset.callId = String(s.call_id);
    const total = extent(session);
    const covered = (t) =>
      (session.recordings || []).some((r) => r.playable && r.offset_seconds <= t && t < r.end_seconds);

    // ---- summary
    const head = div("dimnb-session-summary");
    const title = div("dimnb-session-title", `Call ${s.call_id} · ${s.start_local}`);
    const facts = div("dimnb-session-facts");
    const items = [
      ["Direction", s.direction],
      ["From", (s.from || {}).label],
      ["To", s.to_party],
      ["Answered / final", (s.final || {}).label],
      ["Outcome", s.outcome],
      ["Ring", clock(s.ring_seconds)],
      ["Talk", clock(s.talk_seconds)],
      ["Total", clock(s.duration_seconds)],
      ["Groups", (s.groups || []).join(", ") || "–"],
    ];
    for (const [k, v] of items) {
      const f = div("dimnb-fact");
      f.append(div("dimnb-fact-key", k), div("dimnb-fact-value", v == null || v === "" ? "–" : String(v)));
      facts.appendChild(f);
    }
    head.append(title, facts);
    const who = (session.participants || []).map((p) => p.label).join(", ");
    if (who) head.appendChild(div("dimnb-session-participants", `Participants: ${who}`));
    root.appendChild(head);

    // ---- timeline
    timeline = div("dimnb-timeline");
    cursor = div("dimnb-cursor");
    cursor.hidden = true;
    playhead = div("dimnb-timeline-playhead");
    playhead.hidden = true;
    timeline.append(cursor, playhead);

    const [axisRow, axis] = row("", "dimnb-axis-row");
    const step = tickStep(total);
    for (let t = 0; t <= total + 1e-6; t += step) {
      const tick = div("dimnb-tick", clock(t));
      tick.style.left = `${(t / total) * 100}%`;
      axis.appendChild(tick);
    }
    timeline.appendChild(axisRow);

    const playHint = (t) => (covered(t) ? "click to play from here" : "");
    const playAt = (track) =>
      track.addEventListener("click", (ev) => {
        const box = track.getBoundingClientRect();
        const t = ((ev.clientX - box.left) / box.width) * total;
        if (covered(t)) model.send({ type: "play_at", call_seconds: t });
      });
    // A conference's legs are its room's member rows: their segment rows would repeat them.
    const folded = (session.conferences || []).length > 0;
    for (const g of session.segments || []) {
      if (folded && g.kind === "conference") continue;
      const label = `${g.seq}. ${agentOf(g)}`;
      const [r, track] = row(label, `dimnb-seg-row dimnb-kind-${g.kind}`);
      r.firstChild.title = `${g.seq}. ${g.label}`;
      const start = Number(g.start_seconds);
      const end = Number(g.end_seconds);
      if (Number.isFinite(start) && Number.isFinite(end)) {
        const answer = Number(g.answer_seconds);
        const bar = div(`dimnb-bar dimnb-seg dimnb-kind-${g.kind}${g.estimated ? " dimnb-estimated" : ""}`);
        bar.dataset.seq = String(g.seq);
        place(bar, start, end, total);
        if (g.kind === "talk" && Number.isFinite(answer) && answer > start && answer < end) {
          const ring = div("dimnb-ring");
          ring.style.width = `${((answer - start) / (end - start)) * 100}%`;
          bar.appendChild(ring);
        }
        bar.appendChild(div("dimnb-bar-text", g.kind === "talk" ? (g.to || {}).label || "" : g.kind));
        track.appendChild(bar);
      }
      hover(track, (f) => {
        const t = f * total;
        const lines = [`${clock(t)} (${wallClock(session, t)})`, `${g.kind}: ${g.label}`];
        lines.push(`${clock(start)}–${clock(end)}${g.reason ? ` · ${g.reason}` : ""}`);
        if (g.estimated) lines.push(`times ${g.time_quality}`);
        const hint = playHint(t);
        if (hint) lines.push(hint);
        return lines;
      });
      playAt(track);
      timeline.appendChild(r);
    }

    for (const c of session.conferences || []) {
      const members = c.members || [];
      const [head, headTrack] = row(`Conference room ${c.room || "?"}`, "dimnb-room-row");
      const room = div("dimnb-bar dimnb-room");
      place(room, Number(c.start_seconds) || 0, Number(c.end_seconds) || total, total);
      room.appendChild(div("dimnb-bar-text", `${members.length} ${members.length === 1 ? "member" : "members"}`));
      headTrack.appendChild(room);
      playAt(headTrack);
      timeline.appendChild(head);
      for (const m of members) {
        const [r, track] = row(m.label, "dimnb-member-row");
        playAt(track);
        const bar = div("dimnb-bar dimnb-member");
        place(bar, Number(m.join_seconds) || 0, Number(m.leave_seconds) || total, total);
        track.appendChild(bar);
        hover(track, (f) => [
          `${clock(f * total)} (${wallClock(session, f * total)})`,
          `${m.label}: joined ${clock(m.join_seconds)}, left ${clock(m.leave_seconds)}`,
          playHint(f * total),
        ].filter(Boolean));
        timeline.appendChild(r);
      }
    }

    const events = session.events || [];
    if (events.length) {
      const [r, track] = row("Events", "dimnb-events-row");
      for (const e of events) {
        const mark = div(`dimnb-event dimnb-event-${e.kind}`);
        mark.style.left = `${(Number(e.at_seconds) / total) * 100}%`;
        mark.title = `${clock(e.at_seconds)} ${e.text}`;
        track.appendChild(mark);
      }
      hover(track, (f) => {
        const t = f * total;
        const near = events.filter((e) => Math.abs(e.at_seconds - t) <= total / 80);
        return [`${clock(t)} (${wallClock(session, t)})`, ...near.map((e) => `${clock(e.at_seconds)} ${e.text}`)];
      });
      timeline.appendChild(r);
    }

    // ---- recordings: absent when there is nothing this user may play (or play once archived)
    const recordings = session.recordings || [];
    if (recordings.length) {
      const section = div("dimnb-recordings");
      const heading = div("dimnb-section-title", "Recordings");
      if ((session.why || {}).play) heading.title = `Why may I hear this? ${session.why.play}`;
      section.appendChild(heading);
      const segments = new Map((session.segments || []).map((g) => [g.seq, g]));
      for (const rec of recordings) {
        const seg = rec.segment_seq != null ? segments.get(rec.segment_seq) : null;
        const [r, track] = row(seg ? `Segment ${seg.seq} · ${agentOf(seg)}` : rec.label, "dimnb-rec-row");
        r.firstChild.title = rec.label;
        const bar = div(`dimnb-bar dimnb-rec ${rec.playable ? "dimnb-playable" : "dimnb-pending"}`);
        bar.dataset.recordingId = String(rec.recording_id);
        place(bar, rec.offset_seconds, rec.end_seconds, total);
        if (rec.playable) {
          const values = peaks[String(rec.recording_id)];
          if (values && values.length) bar.appendChild(waveform(values));
          const icon = div("dimnb-rec-icon");
          icon.innerHTML = ICON_PLAY;
          bar.appendChild(icon);
          bar.setAttribute("role", "button");
          bar.setAttribute("aria-label", `Play ${rec.label}`);
          scrubbable(bar, rec);
          bar.addEventListener("click", (ev) => {
            ev.stopPropagation();
            if (bar.dataset.dragged) {
              delete bar.dataset.dragged;
              return;
            }
            const box = bar.getBoundingClientRect();
            const f = Math.min(1, Math.max(0, (ev.clientX - box.left) / box.width));
            model.send({ type: "play", recording_id: rec.recording_id, offset_seconds: f * rec.duration_seconds });
          });
          if (selected.recording_id === rec.recording_id && rec.duration_seconds > 0) {
            const mark = div("dimnb-selected");
            mark.style.left = `${(selected.offset_seconds / rec.duration_seconds) * 100}%`;
            bar.appendChild(mark);
          }
        } else {
          const icon = div("dimnb-rec-icon");
          icon.innerHTML = ICON_CLOCK;
          bar.append(icon, div("dimnb-bar-text", rec.note || "pending"));
        }
        track.appendChild(bar);
        hover(track, (f) => {
          const t = f * total;
          const inside = t >= rec.offset_seconds && t <= rec.end_seconds;
          const lines = [`${clock(t)} (${wallClock(session, t)})`, rec.label];
          if (inside) lines.push(`${clock(t - rec.offset_seconds)} of ${clock(rec.duration_seconds)} into the recording`);
          lines.push(rec.playable ? (inside ? "click to play from here" : "") : rec.note || "");
          return lines.filter(Boolean);
        });
        section.appendChild(r);
      }
      if ((session.why || {}).play) section.appendChild(div("dimnb-why", `Why may I hear this? ${session.why.play}`));
      timeline.appendChild(section);
    }
    root.append(timeline, tooltip);
    drawnTotal = total;
    showPlayhead();
  }

  model.on("change:session", draw);
  model.on("change:peaks", draw);
  model.on("change:selected", draw);
  model.on("change:message", draw);
  draw();
  return () => {
    window.removeEventListener(TIME_EVENT, onHeard);
    model.off("change:session", draw);
    model.off("change:peaks", draw);
    model.off("change:selected", draw);
    model.off("change:message", draw);
  };
}

export default { render };
