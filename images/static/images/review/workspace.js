/* The review workspace (images/review.py): keyboard-first decisions on large tiles, without a page reload.
 *
 * Plain JavaScript, no build step. Tiles come as JSON (the first page inside the page, the next ones from
 * `tiles/` by keyset cursor); decisions go to `decide/` one request at a time, in the order they were
 * made, so an undo always follows the decision it undoes. The focus moves on at once, before the server
 * answers; the tile shows the outcome when it arrives, and a refused decision leaves the image undecided.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("pod-review-config").textContent);
  const root = document.getElementById("pod-review");
  const grid = document.getElementById("pod-tiles");
  const statusLine = document.getElementById("pod-review-status");
  const counter = document.getElementById("pod-review-counter");
  const moreButton = document.getElementById("pod-more");
  const emptyNote = document.getElementById("pod-review-empty");
  const rejectDialog = document.getElementById("pod-reject");
  const rejectText = document.getElementById("pod-reject-text");
  const helpDialog = document.getElementById("pod-help");
  const lightbox = document.getElementById("pod-lightbox");
  const csrfToken = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const allowed = new Set(config.actions.map((action) => action.name));
  const labels = { approve: "Approved", reject: "Rejected", undo: "Back in the queue", publish: "Publishing" };
  const busyLabels = { approve: "Approving…", reject: "Rejecting…", undo: "Undoing…", publish: "Publishing…" };

  const tiles = [];          // {data, el}
  const byId = new Map();
  const selected = new Set();
  const undoStack = [];      // {action, ids}
  let current = -1;
  let anchor = -1;
  let nextCursor = config.next;
  let loading = null;
  let tail = null;           // the last decision request still running, or null
  let decided = 0;

  // --- Tiles -----------------------------------------------------------------------------------------

  function text(tag, className, value) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    el.textContent = value;
    return el;
  }

  function renderTile(data) {
    const el = document.createElement("div");
    el.className = "pod-tile";
    el.id = "pod-tile-" + data.id;
    el.setAttribute("role", "option");
    el.setAttribute("aria-selected", "false");
    el.tabIndex = -1;
    el.dataset.imageId = data.id;
    el.dataset.state = data.status;
    const frame = document.createElement("div");
    frame.className = "pod-tile-frame";
    if (data.thumbnail_url) {
      const img = document.createElement("img");
      img.src = data.thumbnail_url;
      img.alt = "";
      img.loading = "lazy";
      img.decoding = "async";
      frame.append(img);
    } else {
      frame.append(text("span", "pod-tile-noimage", "no preview"));
    }
    el.append(frame);
    const meta = document.createElement("div");
    meta.className = "pod-tile-meta";
    meta.append(text("p", "pod-tile-prompt", data.prompt || "(no prompt)"));
    const facts = document.createElement("p");
    facts.className = "pod-tile-facts";
    facts.append(text("span", "pod-tile-size", data.width + "×" + data.height));
    facts.append(" ", text("span", "pod-tile-dpi", data.dpi ? data.dpi + " dpi" : "no dpi"));
    const quality = text("span", "pod-tile-badge pod-tile-q-" + data.quality.level, data.quality.label);
    if (data.quality.details.length) quality.title = data.quality.details.join("\n");
    facts.append(" ", quality);
    if (data.duplicate) facts.append(" ", text("span", "pod-tile-badge pod-tile-duplicate", "duplicate prompt"));
    meta.append(facts);
    const line = [data.created];
    if (data.slot) line.push("#" + data.slot + " of its generation");
    meta.append(text("p", "pod-tile-when", line.join(" · ")));
    const state = text("p", "pod-tile-state", data.status === "pending" ? "" : data.status);
    meta.append(state);
    el.append(meta);
    el.addEventListener("click", (event) => onTileClick(event, data.id));
    el.addEventListener("dblclick", () => openLightbox());
    return el;
  }

  function addTiles(list) {
    const fragment = document.createDocumentFragment();
    for (const data of list) {
      if (byId.has(data.id)) continue;
      const tile = { data, el: renderTile(data), busy: false };
      byId.set(data.id, tile);
      tiles.push(tile);
      fragment.append(tile.el);
    }
    grid.append(fragment);
    moreButton.hidden = !nextCursor;
    emptyNote.hidden = tiles.length > 0;
    updateCounter();
  }

  function indexOf(id) {
    return tiles.indexOf(byId.get(id));
  }

  function columns() {
    const template = getComputedStyle(grid).gridTemplateColumns;
    return Math.max(1, template.split(" ").filter(Boolean).length);
  }

  function focusTile(index, options) {
    if (!tiles.length) return;
    index = Math.max(0, Math.min(tiles.length - 1, index));
    if (current >= 0 && tiles[current]) {
      tiles[current].el.tabIndex = -1;
      tiles[current].el.setAttribute("aria-selected", "false");
    }
    current = index;
    const el = tiles[index].el;
    el.tabIndex = 0;
    el.setAttribute("aria-selected", "true");
    if (!options || options.focus !== false) {
      el.focus({ preventScroll: true });
      el.scrollIntoView({ block: "nearest" });
    }
    if (nextCursor && index >= tiles.length - columns() * 2) loadMore();
  }

  function undecided(tile) {
    return tile.data.status === "pending" && !tile.busy;
  }

  // The next image still to decide after `index`, wrapping round; `index` itself when none is left.
  function nextUndecided(index) {
    for (let step = 1; step <= tiles.length; step++) {
      const candidate = (index + step) % tiles.length;
      if (undecided(tiles[candidate])) return candidate;
    }
    return index;
  }

  function loadMore() {
    if (!nextCursor || loading) return loading;
    const params = new URLSearchParams(config.filters);
    params.set("after", nextCursor);
    moreButton.disabled = true;
    loading = fetch(config.urls.tiles + "?" + params, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => response.json().then((body) => ({ ok: response.ok, body })))
      .then(({ ok, body }) => {
        if (!ok) throw new Error(body.error || "could not load more images");
        nextCursor = body.next;
        addTiles(body.tiles);
      })
      .catch((error) => announce("Could not load more images: " + error.message))
      .finally(() => {
        loading = null;
        moreButton.disabled = false;
      });
    return loading;
  }

  // --- Selection ---------------------------------------------------------------------------------------

  function setSelected(tile, on) {
    if (on) selected.add(tile.data.id);
    else selected.delete(tile.data.id);
    tile.el.setAttribute("aria-checked", on ? "true" : "false");
    tile.el.classList.toggle("is-checked", on);
  }

  function clearSelection() {
    for (const id of selected) {
      const tile = byId.get(id);
      if (tile) setSelected(tile, false);
    }
    selected.clear();
    updateCounter();
  }

  function toggleSelect() {
    if (current < 0) return;
    const tile = tiles[current];
    setSelected(tile, !selected.has(tile.data.id));
    anchor = current;
    updateCounter();
  }

  function selectRange(to) {
    const from = anchor >= 0 ? anchor : to;
    for (let i = Math.min(from, to); i <= Math.max(from, to); i++) {
      if (undecided(tiles[i])) setSelected(tiles[i], true);
    }
    anchor = to;
    updateCounter();
  }

  function onTileClick(event, id) {
    const index = indexOf(id);
    if (event.shiftKey && allowed.has("approve")) {
      selectRange(index);
    } else if ((event.ctrlKey || event.metaKey) && allowed.has("approve")) {
      focusTile(index);
      toggleSelect();
    }
    focusTile(index);
  }

  // --- Decisions ---------------------------------------------------------------------------------------

  function announce(message) {
    statusLine.textContent = message;
  }

  function updateCounter() {
    const parts = [decided + " decided here"];
    if (selected.size) parts.push(selected.size + " selected");
    if (!nextCursor) parts.push(tiles.filter(undecided).length + " to go");
    counter.textContent = parts.join(" · ");
  }

  function setState(tile, message, refused) {
    tile.el.dataset.state = tile.busy ? "deciding" : tile.data.status;
    tile.el.classList.toggle("is-refused", Boolean(refused));
    tile.el.querySelector(".pod-tile-state").textContent = message;
  }

  function post(action, ids, reason) {
    return fetch(config.urls.decide, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify({ action, image_ids: ids, reason: reason || "" }),
    }).then(
      (response) => response.json().then(
        (body) => (response.ok ? body : { error: body.error || "refused (" + response.status + ")" }),
        () => ({ error: "the session has ended or the server failed (" + response.status + "): reload the page" }),
      ),
      () => ({ error: "the server could not be reached" }),
    );
  }

  // Apply the server's answer to the tiles; returns the ids that changed.
  function settle(action, ids, body, before) {
    const done = [];
    const results = new Map((body.results || []).map((r) => [r.image_id, r]));
    for (const id of ids) {
      const tile = byId.get(id);
      if (!tile) continue;
      tile.busy = false;
      const result = results.get(id);
      if (result && result.ok) {
        tile.data.status = result.status;
        done.push(id);
        setState(tile, labels[action], false);
      } else {
        // Refused: the tile shows why and what the image is now; an undecided image stays to decide.
        if (result && result.status) tile.data.status = result.status;
        else tile.data.status = before.get(id);
        const why = result ? result.error + (result.decided_by ? " — " + result.decided_by : "") : body.error;
        setState(tile, "Not changed: " + why, true);
      }
    }
    return done;
  }

  // Decision requests run one at a time, in order; with none running, the request leaves at once
  // (in this very task, before the focus moves and the page lays itself out again).
  function enqueue(task) {
    const started = tail ? tail.then(task) : task();
    const mine = Promise.resolve(started).catch(() => undefined).then(() => {
      if (tail === mine) tail = null;
    });
    tail = mine;
  }

  function targets() {
    if (selected.size) return tiles.filter((tile) => selected.has(tile.data.id));
    return current >= 0 ? [tiles[current]] : [];
  }

  function decide(action, reason) {
    if (!allowed.has(action)) return;
    const chosen = targets().filter((tile) => !tile.busy);
    if (!chosen.length) return;
    const ids = chosen.map((tile) => tile.data.id);
    const before = new Map(chosen.map((tile) => [tile.data.id, tile.data.status]));
    for (const tile of chosen) {
      tile.busy = true;
      setState(tile, busyLabels[action], false);
    }
    enqueue(() => post(action, ids, reason).then((body) => {
      const done = settle(action, ids, body, before);
      if (done.length) {
        undoStack.push({ action, ids: done });
        decided += done.length;
      }
      const refused = ids.length - done.length;
      const cleared = !nextCursor && !tiles.some(undecided) ? " Every image here is decided." : "";
      announce(labels[action] + " " + done.length + " image" + (done.length === 1 ? "" : "s") +
        (refused ? "; " + refused + " not changed" : "") + "." + cleared);
      updateCounter();
    }));
    clearSelection();
    focusTile(nextUndecided(indexOf(ids[ids.length - 1])));
  }

  function undo() {
    if (!allowed.has("undo")) return;
    enqueue(() => {
      const entry = undoStack.pop();
      if (!entry) {
        announce("Nothing to undo.");
        return null;
      }
      const before = new Map();
      for (const id of entry.ids) {
        const tile = byId.get(id);
        before.set(id, tile.data.status);
        tile.busy = true;
        setState(tile, busyLabels.undo, false);
      }
      return post("undo", entry.ids).then((body) => {
        const done = settle("undo", entry.ids, body, before);
        decided -= done.length;
        if (done.length) focusTile(indexOf(done[0]));
        announce(done.length ? "Undone: " + done.length + " image" + (done.length === 1 ? "" : "s") +
          " back in the queue." : "Could not undo: " + (body.error || "refused") + ".");
        updateCounter();
      });
    });
  }

  // --- Reject dialog -------------------------------------------------------------------------------------

  function openReject() {
    if (!allowed.has("reject") || !targets().some((tile) => !tile.busy)) return;
    document.getElementById("pod-reject-count").textContent =
      selected.size ? selected.size + " selected images" : "this image";
    rejectText.value = "";
    rejectDialog.showModal();
    rejectText.focus();
  }

  function rejectWith(reason) {
    rejectDialog.close();
    decide("reject", reason);
  }

  rejectText.addEventListener("keydown", (event) => {
    // A digit as the first key picks that quick reason; anything else is typed as a reason of one's own.
    if (rejectText.value === "" && /^[1-9]$/.test(event.key) && config.reasons[Number(event.key) - 1]) {
      event.preventDefault();
      rejectWith(config.reasons[Number(event.key) - 1]);
    }
  });
  document.getElementById("pod-reject-form").addEventListener("submit", (event) => {
    event.preventDefault();
    rejectWith(rejectText.value.trim());
  });
  rejectDialog.querySelectorAll("[data-reason]").forEach((button) => {
    button.addEventListener("click", () => rejectWith(config.reasons[Number(button.dataset.reason)]));
  });

  // --- Lightbox: the full-resolution print file, zoom and pan ----------------------------------------

  const stage = document.getElementById("pod-lightbox-stage");
  const photo = document.getElementById("pod-lightbox-img");
  const view = { zoom: 1, x: 0, y: 0 };

  function paint() {
    photo.style.transform = "translate(" + view.x + "px, " + view.y + "px) scale(" + view.zoom + ")";
  }

  function zoomTo(value) {
    view.zoom = Math.max(1, Math.min(16, value));
    if (view.zoom === 1) view.x = view.y = 0;
    paint();
  }

  function zoomCommand(name) {
    if (name === "in") zoomTo(view.zoom * 1.5);
    else if (name === "out") zoomTo(view.zoom / 1.5);
    else if (name === "fit") zoomTo(1);
    else if (name === "actual" && photo.naturalWidth && photo.clientWidth) {
      zoomTo(photo.naturalWidth / photo.clientWidth);
    }
  }

  function openLightbox() {
    if (current < 0) return;
    const data = tiles[current].data;
    document.getElementById("pod-lightbox-title").textContent =
      (data.prompt || "(no prompt)") + " — " + data.width + "×" + data.height;
    photo.src = data.file_url;
    view.zoom = 1;
    view.x = view.y = 0;
    paint();
    lightbox.showModal();
    stage.focus();
  }

  // Listened to on the document, so the keys work wherever the focus is while the lightbox is open.
  function lightboxKey(event) {
    const step = 80;
    const zoomKeys = {
      "+": () => zoomCommand("in"), "=": () => zoomCommand("in"), "-": () => zoomCommand("out"),
      "0": () => zoomCommand("fit"), "1": () => zoomCommand("actual"),
      ArrowLeft: () => { view.x += step; paint(); }, ArrowRight: () => { view.x -= step; paint(); },
      ArrowUp: () => { view.y += step; paint(); }, ArrowDown: () => { view.y -= step; paint(); },
    };
    if (event.key === " " && !(event.target instanceof HTMLButtonElement)) {
      event.preventDefault();
      lightbox.close();
    } else if (zoomKeys[event.key]) {
      event.preventDefault();
      zoomKeys[event.key]();
    }
  }
  lightbox.querySelectorAll("[data-zoom]").forEach((button) => {
    button.addEventListener("click", () => zoomCommand(button.dataset.zoom));
  });
  stage.addEventListener("wheel", (event) => {
    event.preventDefault();
    zoomTo(view.zoom * (event.deltaY < 0 ? 1.2 : 1 / 1.2));
  }, { passive: false });
  stage.addEventListener("pointerdown", (event) => {
    const start = { x: event.clientX - view.x, y: event.clientY - view.y };
    stage.setPointerCapture(event.pointerId);
    const move = (e) => { view.x = e.clientX - start.x; view.y = e.clientY - start.y; paint(); };
    const up = () => { stage.removeEventListener("pointermove", move); stage.removeEventListener("pointerup", up); };
    stage.addEventListener("pointermove", move);
    stage.addEventListener("pointerup", up);
  });

  // --- Dialogs give the focus back to the tile --------------------------------------------------------

  for (const dialog of [rejectDialog, helpDialog, lightbox]) {
    dialog.querySelectorAll("[data-close]").forEach((button) => button.addEventListener("click", () => dialog.close()));
    dialog.addEventListener("close", () => {
      if (current >= 0 && !document.querySelector("dialog[open]")) focusTile(current);
    });
  }

  function toggleHelp() {
    if (helpDialog.open) helpDialog.close();
    else helpDialog.showModal();
  }

  function openGeneration() {
    const data = current >= 0 ? tiles[current].data : null;
    if (data && data.generation) window.location.href = config.urls.generation.replace("__id__", encodeURIComponent(data.generation));
    else announce("This image was not generated here: it has no generation.");
  }

  // --- Commands: one table for the keys and the buttons -----------------------------------------------

  const commands = {
    previous: () => focusTile(current - 1),
    next: () => focusTile(current + 1),
    up: () => focusTile(current - columns()),
    down: () => focusTile(current + columns()),
    first: () => focusTile(0),
    last: () => focusTile(tiles.length - 1),
    approve: () => decide("approve"),
    reject: () => openReject(),
    publish: () => decide("publish"),
    undo: () => undo(),
    select: () => allowed.has("approve") && toggleSelect(),
    range: () => allowed.has("approve") && selectRange(current),
    clear: () => clearSelection(),
    lightbox: () => openLightbox(),
    generation: () => openGeneration(),
    help: () => toggleHelp(),
    more: () => loadMore(),
  };
  const keys = {
    ArrowLeft: "previous", h: "previous", ArrowRight: "next", l: "next",
    ArrowUp: "up", k: "up", ArrowDown: "down", j: "down", Home: "first", End: "last",
    a: "approve", r: "reject", p: "publish", u: "undo", x: "select", X: "range", Escape: "clear",
    " ": "lightbox", g: "generation", "?": "help",
  };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (lightbox.open) {
      lightboxKey(event);
      return;
    }
    if (document.querySelector("dialog[open]")) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) return;
    // On a button or link, space and Enter keep their own meaning.
    if ((event.key === " " || event.key === "Enter") && target instanceof HTMLElement && target.closest("button, a")) return;
    const name = keys[event.key];
    if (!name || (name === "publish" && !allowed.has("publish"))) return;
    event.preventDefault();
    commands[name]();
  });

  root.querySelectorAll("[data-command]").forEach((button) => {
    button.addEventListener("click", () => {
      const name = button.dataset.command;
      commands[name]();
      // The tile keeps the focus so that the keys go on working after a click.
      if (current >= 0 && name !== "more" && !document.querySelector("dialog[open]") && name !== "generation") {
        tiles[current].el.focus({ preventScroll: true });
      }
    });
  });

  // Endless scroll: the next page is fetched when the end of the grid comes into view.
  if ("IntersectionObserver" in window) {
    new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) loadMore();
    }, { rootMargin: "600px" }).observe(moreButton);
  }

  addTiles(config.tiles);
  if (tiles.length) focusTile(config.mode === "generation" ? Math.max(0, nextUndecided(-1)) : 0);
})();
