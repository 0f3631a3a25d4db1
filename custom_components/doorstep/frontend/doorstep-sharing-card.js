// Doorstep's sharing card: footage requests, each behind its own switch (off until a
// person turns it on), with a Decline button; and, for admins, who may ask.
//
// Plain JavaScript with no imports, so there is nothing to build. It talks to Home
// Assistant only through Doorstep's websocket commands, which act as the logged-in
// user: the server decides who may approve, and the card shows what it said.

const CARD_TYPE = "doorstep-sharing-card";

// Every text the card shows, in one place, so translating it later is one table.
const STRINGS = {
  en: {
    title: "Footage requests",
    empty: "No requests for footage. Nothing is shared.",
    loading: "Loading requests…",
    unavailable: "Doorstep sharing is not running. Check Repairs and the log.",
    share: "Share clips with {requester} ({reference})",
    decline: "Decline",
    why: "Why",
    window: "Footage from",
    wanted_by: "Wanted by",
    contact: "Contact",
    clips: "Clips",
    no_clips: "no clips recorded in this window",
    clip_count_one: "1 clip, {duration} s, {size}",
    clip_count_other: "{count} clips, {duration} s, {size}",
    state_pending: "Waiting for you",
    state_approved: "Shared",
    state_fulfilled: "Shared and picked up",
    kind_police: "Police",
    kind_neighbour: "Neighbour",
    kind_insurer: "Insurer",
    kind_other: "Other",
    off_note: "Nothing leaves the house unless you turn this on.",
    requesters: "Requesters",
    requester_name: "Name",
    requester_kind: "Kind",
    add_requester: "Add requester",
    revoke: "Revoke",
    revoked: "revoked",
    token_once:
      "Token for {name}, shown only now (Home Assistant keeps only its hash). Hub key {key_id}:",
    no_requesters: "No requesters yet.",
    error: "Not done: {message}",
  },
};

const KINDS = ["police", "neighbour", "insurer", "other"];

function text(hass, key, values = {}) {
  const language = hass?.locale?.language ?? hass?.language ?? "en";
  const table = STRINGS[language] ?? STRINGS.en;
  const template = table[key] ?? STRINGS.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_match, name) => String(values[name] ?? ""));
}

// Times as the person's profile asks: in the server's time zone or the browser's own.
function dateFormat(hass) {
  const language = hass?.locale?.language ?? "en";
  const timeZone = hass?.locale?.time_zone === "server" ? hass?.config?.time_zone : undefined;
  try {
    return new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "short", timeZone });
  } catch (_err) {
    return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
}

function formatTime(hass, iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat(hass).format(date);
}

// "Nov 27, 2026, 1:04 – 1:14 AM" rather than the date twice.
function formatRange(hass, startIso, endIso) {
  const start = new Date(startIso);
  const end = new Date(endIso);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) {
    return `${startIso} – ${endIso}`;
  }
  return dateFormat(hass).formatRange(start, end);
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

// Home Assistant defines its elements lazily; fall back to plain ones until it has.
function element(preferred, fallback) {
  return document.createElement(customElements.get(preferred) ? preferred : fallback);
}

function make(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined) node.textContent = content;
  return node;
}

const STYLE = `
  :host { display: block; }
  ha-card { overflow: hidden; }
  .header {
    display: flex; align-items: center; justify-content: space-between;
    padding: 16px 16px 4px; font-size: 1.25em; font-weight: 500;
    color: var(--ha-card-header-color, var(--primary-text-color));
  }
  .count {
    font-size: 0.75em; font-weight: 500; border-radius: 12px; padding: 2px 10px;
    background: var(--warning-color, #ffa600); color: var(--text-primary-color, #fff);
  }
  .count.none { background: var(--disabled-color, #bdbdbd); }
  .empty, .status { padding: 8px 16px 16px; color: var(--secondary-text-color); }
  .request { padding: 12px 16px; border-top: 1px solid var(--divider-color, #e0e0e0); }
  .request:first-of-type { border-top: none; }
  .who { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
  .name { font-weight: 500; font-size: 1.05em; }
  .chip {
    font-size: 0.75em; border-radius: 10px; padding: 1px 8px;
    background: var(--secondary-background-color, #f0f0f0);
    color: var(--secondary-text-color);
  }
  .chip.state-pending { background: rgba(255, 166, 0, 0.18); color: var(--primary-text-color); }
  .chip.state-approved, .chip.state-fulfilled {
    background: rgba(67, 160, 71, 0.2); color: var(--primary-text-color);
  }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0; }
  dt { color: var(--secondary-text-color); }
  dd { margin: 0; overflow-wrap: anywhere; }
  .decide {
    display: flex; align-items: center; justify-content: space-between; gap: 12px;
    margin-top: 4px;
  }
  .toggle { display: flex; align-items: center; gap: 12px; cursor: pointer; }
  .note { font-size: 0.85em; color: var(--secondary-text-color); margin-top: 2px; }
  .error {
    margin-top: 8px; padding: 6px 10px; border-radius: 4px;
    background: rgba(219, 68, 55, 0.12); color: var(--error-color, #db4437);
  }
  details { padding: 8px 16px 16px; border-top: 1px solid var(--divider-color, #e0e0e0); }
  summary { cursor: pointer; color: var(--secondary-text-color); }
  .requester { display: flex; justify-content: space-between; align-items: center; padding: 4px 0; }
  .add { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-top: 8px; }
  .add input, .add select { padding: 6px; font: inherit; }
  code { display: block; word-break: break-all; margin-top: 4px; user-select: all; }
`;

class DoorstepSharingCard extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._config = {};
    this._hass = null;
    this._requests = null; // null until the first answer
    this._unavailable = false;
    this._errors = new Map(); // request id (or "requesters") -> message
    this._busy = new Set();
    this._requesters = null;
    this._newToken = null;
    this._draft = { name: "", kind: KINDS[0] }; // survives re-renders while typing
    this._unsubscribe = null;
    // Home Assistant defines its elements lazily: draw again with the real ones once
    // they exist, so a card drawn early does not keep its plain fallbacks.
    for (const tag of ["ha-card", "ha-switch", "ha-button"]) {
      if (!customElements.get(tag)) customElements.whenDefined(tag).then(() => this._render());
    }
  }

  static getStubConfig() {
    return {};
  }

  setConfig(config) {
    this._config = config ?? {};
    this._render();
  }

  set hass(hass) {
    const first = this._hass === null;
    this._hass = hass;
    if (first) {
      this._subscribe();
      this._render();
    }
  }

  get hass() {
    return this._hass;
  }

  getCardSize() {
    return 1 + 3 * (this._requests?.length ?? 1);
  }

  connectedCallback() {
    this._subscribe();
  }

  disconnectedCallback() {
    const unsubscribe = this._unsubscribe;
    this._unsubscribe = null;
    if (unsubscribe) unsubscribe.then((stop) => stop()).catch(() => {});
  }

  _subscribe() {
    if (!this._hass || this._unsubscribe || !this.isConnected) return;
    this._unsubscribe = this._hass.connection.subscribeMessage(
      (event) => {
        this._requests = event.requests;
        this._unavailable = event.available === false;
        this._render();
      },
      { type: "doorstep/sharing/subscribe" },
    );
    this._unsubscribe.catch(() => {
      this._unsubscribe = null;
      this._unavailable = true;
      this._render();
    });
  }

  async _command(key, message, after) {
    this._busy.add(key);
    this._errors.delete(key);
    this._render();
    try {
      const result = await this._hass.callWS(message);
      if (after) after(result);
    } catch (err) {
      this._errors.set(key, text(this._hass, "error", { message: err?.message ?? String(err) }));
    } finally {
      this._busy.delete(key);
      this._render();
    }
  }

  _setShared(request, on) {
    const type = on ? "doorstep/sharing/approve" : "doorstep/sharing/revoke";
    this._command(request.id, { type, request_id: request.id });
  }

  _decline(request) {
    this._command(request.id, { type: "doorstep/sharing/decline", request_id: request.id });
  }

  _loadRequesters() {
    this._command("requesters", { type: "doorstep/sharing/requesters" }, (result) => {
      this._requesters = result.requesters;
    });
  }

  _render() {
    const root = this.shadowRoot;
    if (!root) return;
    root.replaceChildren();
    const style = document.createElement("style");
    style.textContent = STYLE;
    const card = element("ha-card", "div");
    root.append(style, card);

    const hass = this._hass;
    const requests = this._requests ?? [];
    const header = make("div", "header", this._config.title ?? text(hass, "title"));
    const pending = requests.filter((r) => r.state === "pending").length;
    header.append(make("span", pending ? "count" : "count none", String(pending)));
    card.append(header);

    if (this._unavailable) {
      card.append(make("div", "status", text(hass, "unavailable")));
    } else if (this._requests === null) {
      card.append(make("div", "status", text(hass, "loading")));
    } else if (requests.length === 0) {
      card.append(make("div", "empty", text(hass, "empty")));
    }
    for (const request of requests) card.append(this._renderRequest(request));
    if (hass?.user?.is_admin) card.append(this._renderRequesters());
  }

  _renderRequest(request) {
    const hass = this._hass;
    const block = make("div", "request");
    block.dataset.requestId = request.id;

    const who = make("div", "who");
    who.append(
      make("span", "name", request.requester.name),
      make("span", "chip", text(hass, `kind_${request.requester.kind}`)),
      make("span", "chip", request.reference),
      make("span", `chip state-${request.state}`, text(hass, `state_${request.state}`)),
    );
    block.append(who);

    const details = document.createElement("dl");
    const clipSeconds = request.clips.reduce((sum, clip) => sum + clip.duration_s, 0);
    const clipBytes = request.clips.reduce((sum, clip) => sum + clip.size_bytes, 0);
    const rows = [
      ["why", request.reason],
      ["window", formatRange(hass, request.window.start, request.window.end)],
      ["wanted_by", formatTime(hass, request.wanted_by)],
      ["contact", request.contact],
      [
        "clips",
        request.clips.length
          ? text(hass, request.clips.length === 1 ? "clip_count_one" : "clip_count_other", {
              count: request.clips.length,
              duration: clipSeconds.toFixed(1),
              size: formatSize(clipBytes),
            })
          : text(hass, "no_clips"),
      ],
    ];
    for (const [key, value] of rows) {
      details.append(make("dt", "", text(hass, key)), make("dd", "", value));
    }
    block.append(details);

    const shared = request.state === "approved" || request.state === "fulfilled";
    const busy = this._busy.has(request.id);
    const decide = make("div", "decide");
    const label = make("label", "toggle");
    const toggle = element("ha-switch", "input");
    if (toggle.tagName === "INPUT") {
      toggle.type = "checkbox";
      toggle.setAttribute("role", "switch");
    }
    toggle.classList.add("share-toggle");
    toggle.checked = shared;
    toggle.disabled = busy;
    const shareText = text(hass, "share", {
      requester: request.requester.name,
      reference: request.reference,
    });
    toggle.setAttribute("aria-label", shareText);
    toggle.addEventListener("change", () => this._setShared(request, toggle.checked));
    label.append(toggle, make("span", "", shareText));
    decide.append(label);
    if (request.state === "pending") {
      const decline = element("ha-button", "button");
      decline.classList.add("decline");
      decline.textContent = text(hass, "decline");
      decline.disabled = busy;
      decline.addEventListener("click", () => this._decline(request));
      decide.append(decline);
    }
    block.append(decide);
    if (!shared) block.append(make("div", "note", text(hass, "off_note")));
    const error = this._errors.get(request.id);
    if (error) block.append(make("div", "error", error));
    return block;
  }

  _renderRequesters() {
    const hass = this._hass;
    const section = document.createElement("details");
    section.open = this._requestersOpen ?? false;
    section.addEventListener("toggle", () => {
      this._requestersOpen = section.open;
      if (section.open && this._requesters === null && !this._busy.has("requesters")) {
        this._loadRequesters();
      }
    });
    section.append(make("summary", "", text(hass, "requesters")));
    if (this._requesters !== null) {
      if (this._requesters.length === 0) section.append(make("div", "", text(hass, "no_requesters")));
      for (const requester of this._requesters) {
        const row = make("div", "requester");
        const kind = text(hass, `kind_${requester.kind}`);
        row.append(
          make(
            "span",
            "",
            `${requester.name} (${kind})${requester.revoked ? ` – ${text(hass, "revoked")}` : ""}`,
          ),
        );
        if (!requester.revoked) {
          const revoke = element("ha-button", "button");
          revoke.textContent = text(hass, "revoke");
          revoke.addEventListener("click", () =>
            this._command(
              "requesters",
              { type: "doorstep/sharing/requester/revoke", requester_id: requester.id },
              () => this._loadRequesters(),
            ),
          );
          row.append(revoke);
        }
        section.append(row);
      }
    }
    if (this._newToken) {
      const shown = make("div", "note", text(hass, "token_once", this._newToken));
      shown.append(make("code", "", this._newToken.token));
      section.append(shown);
    }
    const form = make("div", "add");
    const name = document.createElement("input");
    name.value = this._draft.name;
    name.addEventListener("input", () => {
      this._draft.name = name.value;
    });
    name.placeholder = text(hass, "requester_name");
    name.setAttribute("aria-label", text(hass, "requester_name"));
    const kind = document.createElement("select");
    kind.setAttribute("aria-label", text(hass, "requester_kind"));
    for (const value of KINDS) {
      const option = make("option", "", text(hass, `kind_${value}`));
      option.value = value;
      kind.append(option);
    }
    kind.value = this._draft.kind;
    kind.addEventListener("change", () => {
      this._draft.kind = kind.value;
    });
    const add = element("ha-button", "button");
    add.textContent = text(hass, "add_requester");
    add.addEventListener("click", () =>
      this._command(
        "requesters",
        { type: "doorstep/sharing/requester/create", name: name.value, kind: kind.value },
        (result) => {
          this._newToken = {
            name: result.requester.name,
            token: result.token,
            key_id: result.key_id,
          };
          this._draft.name = "";
          this._loadRequesters();
        },
      ),
    );
    form.append(name, kind, add);
    section.append(form);
    const error = this._errors.get("requesters");
    if (error) section.append(make("div", "error", error));
    return section;
  }
}

function defineCard() {
  if (window.customElements.get(CARD_TYPE)) return;
  window.customElements.define(CARD_TYPE, DoorstepSharingCard);
  window.customCards = window.customCards || [];
  window.customCards.push({
    type: CARD_TYPE,
    name: "Doorstep footage requests",
    description:
      "Requests for doorbell footage, each behind its own switch (off until you turn it on), with a Decline button.",
    documentationURL: "https://github.com/doorstep-home/doorstep#the-sharing-card",
  });
}

// Home Assistant's app bundle replaces window.customElements with a scoped-registry
// polyfill when it loads, and this module loads alongside it. An element defined in the
// registry being replaced is invisible to the dashboard ("Custom element doesn't
// exist"), so define the card only once Home Assistant's own root element is in the
// registry in use, which happens after the swap.
(function defineWhenHomeAssistantIsReady() {
  if (window.customElements.get("home-assistant")) defineCard();
  else setTimeout(defineWhenHomeAssistantIsReady, 50);
})();
