// Doorstep's sharing card: footage requests, each behind its own switch (off until a
// person turns it on), the closed requests with what happened to them, and, for admins,
// the audit trail and who may ask.
//
// Turning a switch on never approves by itself: it opens a confirmation that shows what
// would leave (asked of the hub, not worked out here), lets the person play each clip,
// and asks them to prove who they are. The hub decides; the card shows what it said.
//
// Plain JavaScript with no imports, so there is nothing to build. Every text comes from
// the integration's translations (strings.json, section "common", keys "card_*"), loaded
// through Home Assistant's own frontend/get_translations.

const CARD_TYPE = "doorstep-sharing-card";
const EDITOR_TYPE = "doorstep-sharing-card-editor";
const DOMAIN = "doorstep";
const AUDIT_EXPORT_PATH = "/api/doorstep/v1/audit";
// The newest audit entries shown; the export has them all.
const AUDIT_SHOWN = 50;

const DEFAULT_CONFIG = {
  show_closed: true,
  show_audit: true,
  show_requesters: true,
};

const KINDS = ["police", "neighbour", "insurer", "other"];

// Times as the person's profile asks: in the server's time zone or the browser's own.
function dateFormat(hass) {
  const language = hass?.locale?.language ?? hass?.language ?? "en";
  const timeZone = hass?.locale?.time_zone === "server" ? hass?.config?.time_zone : undefined;
  try {
    return new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "short", timeZone });
  } catch (_err) {
    return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
}

function formatTime(hass, iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat(hass).format(date);
}

// "Nov 27, 2026, 1:04 – 1:14 AM" rather than the date twice.
function formatRange(hass, startIso, endIso) {
  const start = new Date(startIso);
  const end = new Date(endIso);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) {
    return `${startIso} \u2013 ${endIso}`;
  }
  return dateFormat(hass).formatRange(start, end);
}

function formatNumber(hass, value, digits) {
  const language = hass?.locale?.language ?? "en";
  return new Intl.NumberFormat(language, {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(value);
}

// Sizes in binary units with the person's decimal separator; the unit symbols are
// international (IEC), so they are not translated. A no-break space keeps number and
// unit on one line.
function formatSize(hass, bytes) {
  if (bytes < 1024) return `${formatNumber(hass, bytes, 0)}\u00a0B`;
  if (bytes < 1024 * 1024) return `${formatNumber(hass, bytes / 1024, 1)}\u00a0KiB`;
  return `${formatNumber(hass, bytes / (1024 * 1024), 1)}\u00a0MiB`;
}

// Home Assistant defines its elements lazily; fall back to plain ones until it has.
function element(preferred, fallback) {
  return document.createElement(customElements.get(preferred) ? preferred : fallback);
}

// An audit entry's details as the log has them (tokens, ids, counts), one line.
function auditDetail(detail) {
  if (detail === null || detail === undefined) return "";
  if (typeof detail !== "object") return String(detail);
  return Object.entries(detail)
    .map(([key, value]) => `${key}=${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(" ");
}

// Home Assistant's own elements (a Lit switch, say) can take focus only once they have
// drawn themselves, a moment after they are made.
function focusWhenDrawn(target) {
  if (!target) return;
  Promise.resolve(target.updateComplete)
    .then(() => {
      target.focus();
      // A redrawn text field gets its caret back at the end of what was typed.
      if (target.tagName === "INPUT" && target.type === "text") {
        target.setSelectionRange(target.value.length, target.value.length);
      }
    })
    .catch(() => {});
}

function make(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined && content !== null) node.textContent = content;
  return node;
}

function button(label, className, onClick) {
  const node = element("ha-button", "button");
  if (node.tagName === "BUTTON") node.type = "button";
  if (className) node.className = className;
  node.textContent = label;
  node.addEventListener("click", onClick);
  return node;
}

// Scoped: a key the card uses is looked up under component.doorstep.<category>.
function localizeKey(category, key) {
  return `component.${DOMAIN}.${category}.${key}`;
}

const STYLE = `
  :host { display: block; }
  ha-card { overflow: hidden; }
  .header {
    display: flex; align-items: center; justify-content: space-between; gap: 8px;
    padding: 16px 16px 4px; font-size: 1.25em; font-weight: 500;
    color: var(--ha-card-header-color, var(--primary-text-color));
  }
  .header h2 { font: inherit; margin: 0; }
  .count {
    font-size: 0.75em; font-weight: 500; border-radius: 12px; padding: 2px 10px;
    background: var(--warning-color, #ffa600); color: #000;
  }
  .count.none {
    background: var(--secondary-background-color, #e0e0e0); color: var(--primary-text-color);
  }
  .empty, .status { padding: 8px 16px 16px; color: var(--secondary-text-color); }
  .request { padding: 12px 16px; border-top: 1px solid var(--divider-color, #e0e0e0); }
  .requests > .request:first-child { border-top: none; }
  .who { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
  .name { font-weight: 500; font-size: 1.05em; }
  .chip {
    font-size: 0.75em; border-radius: 10px; padding: 1px 8px;
    background: var(--secondary-background-color, #f0f0f0);
    color: var(--primary-text-color);
  }
  .chip.state-pending { background: rgba(255, 166, 0, 0.25); }
  .chip.state-approved, .chip.state-fulfilled, .chip.outcome-released {
    background: rgba(67, 160, 71, 0.28);
  }
  .chip.outcome-declined, .chip.outcome-revoked { background: rgba(219, 68, 55, 0.22); }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0; }
  dt { color: var(--secondary-text-color); }
  dd { margin: 0; overflow-wrap: anywhere; min-width: 0; }
  .decide {
    display: flex; align-items: center; justify-content: space-between; gap: 12px;
    flex-wrap: wrap; margin-top: 4px;
  }
  .toggle { display: flex; align-items: center; gap: 12px; cursor: pointer; min-width: 0; }
  .note { font-size: 0.85em; color: var(--secondary-text-color); margin-top: 2px; }
  .error {
    margin-top: 8px; padding: 6px 10px; border-radius: 4px;
    background: rgba(219, 68, 55, 0.14); color: var(--primary-text-color);
    border-left: 4px solid var(--error-color, #db4437);
  }
  .error:empty { display: none; }
  .ok-result, .bad-result {
    margin-top: 8px; padding: 6px 10px; border-radius: 4px; color: var(--primary-text-color);
  }
  .ok-result { background: rgba(67, 160, 71, 0.18); border-left: 4px solid var(--success-color, #43a047); }
  .bad-result { background: rgba(219, 68, 55, 0.14); border-left: 4px solid var(--error-color, #db4437); }
  .live { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  details.section { padding: 8px 16px 12px; border-top: 1px solid var(--divider-color, #e0e0e0); }
  summary {
    cursor: pointer; color: var(--primary-text-color); font-weight: 500; padding: 4px 0;
  }
  summary:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible,
  .thumb:focus-visible {
    outline: 2px solid var(--primary-color, #03a9f4); outline-offset: 2px;
  }
  .closed-request { padding: 8px 0; border-top: 1px solid var(--divider-color, #e0e0e0); }
  .closed-request:first-of-type { border-top: none; }
  ol.history { margin: 4px 0 0; padding-left: 20px; font-size: 0.9em; }
  ol.history time { color: var(--secondary-text-color); margin-right: 6px; }
  .row-actions { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; margin: 8px 0; }
  .audit-scroll { overflow-x: auto; max-height: 320px; overflow-y: auto; }
  table { border-collapse: collapse; width: 100%; font-size: 0.85em; }
  th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--divider-color, #e0e0e0); }
  th { color: var(--secondary-text-color); font-weight: 500; position: sticky; top: 0;
    background: var(--card-background-color, #fff); }
  td.mono, code { font-family: var(--code-font-family, monospace); overflow-wrap: anywhere; }
  /* Whole words and ids: a narrow card scrolls the table sideways instead. */
  table.audit-entries th, table.audit-entries td { white-space: nowrap; overflow-wrap: normal; }
  .requester { display: flex; justify-content: space-between; align-items: center; gap: 8px; padding: 4px 0; }
  .add { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-top: 8px; }
  input, select {
    padding: 8px; font: inherit; color: var(--primary-text-color);
    background: var(--card-background-color, #fff);
    border: 1px solid var(--divider-color, #9e9e9e); border-radius: 4px;
  }
  button {
    font: inherit; padding: 6px 12px; border-radius: 4px; cursor: pointer;
    border: 1px solid var(--divider-color, #9e9e9e);
    background: var(--secondary-background-color, #f0f0f0); color: var(--primary-text-color);
  }
  code { display: block; word-break: break-all; margin-top: 4px; user-select: all; }
  code.detail { display: inline; margin: 0; }

  dialog {
    width: min(600px, calc(100vw - 16px)); max-height: calc(100vh - 16px);
    box-sizing: border-box; padding: 0; border: none; border-radius: 12px;
    background: var(--card-background-color, #fff); color: var(--primary-text-color);
    box-shadow: 0 8px 32px rgba(0, 0, 0, 0.4);
  }
  dialog::backdrop { background: rgba(0, 0, 0, 0.55); }
  .dialog-body { padding: 16px 20px 20px; }
  dialog h2 { margin: 0 0 8px; font-size: 1.2em; font-weight: 500; }
  .leaving { border: 1px solid var(--divider-color, #e0e0e0); border-radius: 8px; padding: 8px 12px; }
  ul.clips {
    list-style: none; padding: 0; margin: 12px 0;
    display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px;
  }
  ul.clips li { min-width: 0; }
  .thumb {
    display: block; width: 100%; padding: 0; border: none; cursor: pointer; position: relative;
    background: #000; border-radius: 6px; overflow: hidden; aspect-ratio: 16 / 9;
  }
  .thumb img, ul.clips video { width: 100%; height: 100%; object-fit: cover; display: block; }
  ul.clips video { aspect-ratio: 16 / 9; background: #000; border-radius: 6px; object-fit: contain; }
  .thumb .play {
    position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
    color: #fff; font-size: 2em; text-shadow: 0 0 6px #000;
  }
  .clip-caption { font-size: 0.8em; color: var(--secondary-text-color); margin-top: 2px; }
  .proof { display: grid; gap: 10px; margin-top: 12px; }
  .proof label { display: grid; gap: 4px; }
  .notice {
    padding: 8px 12px; border-radius: 6px; background: var(--secondary-background-color, #f0f0f0);
    border-left: 4px solid var(--warning-color, #ffa600);
  }
  .actions { display: flex; justify-content: flex-end; gap: 8px; flex-wrap: wrap; margin-top: 16px; }
  @media (max-width: 450px) {
    .dialog-body { padding: 12px; }
    ul.clips { grid-template-columns: 1fr 1fr; }
    dl { grid-template-columns: 1fr; gap: 0; }
    dd { margin-bottom: 4px; }
  }
`;

class DoorstepSharingCard extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._config = { ...DEFAULT_CONFIG };
    this._hass = null;
    this._localize = null; // set once the integration's texts are loaded
    this._requests = null; // null until the first answer
    this._closed = [];
    this._unavailable = false;
    this._errors = new Map(); // request id (or section name) -> message
    this._busy = new Set();
    this._open = new Set(); // which <details> sections are open, across re-renders
    this._requesters = null;
    this._newToken = null;
    this._audit = null;
    this._draft = { name: "", kind: KINDS[0] }; // survives re-renders while typing
    this._announcement = "";
    this._unsubscribe = null;
    this._confirm = null; // the confirmation in progress, see _openConfirm
    this._container = document.createElement("div");
    this._live = make("div", "live");
    this._live.setAttribute("role", "status");
    this._live.setAttribute("aria-live", "polite");
    this._dialog = document.createElement("dialog");
    this._dialog.setAttribute("aria-labelledby", "confirm-title");
    this._dialog.addEventListener("close", () => {
      // The close event comes a moment later: a dialog shown again since stays.
      if (!this._dialog.open) this._confirmClosed();
    });
    const style = document.createElement("style");
    style.textContent = STYLE;
    // The dialog lives beside the re-drawn part, so a hub update does not wipe a
    // password being typed or a clip being played.
    this.shadowRoot.append(style, this._container, this._live, this._dialog);
    // Home Assistant defines its elements lazily: draw again with the real ones once
    // they exist, so a card drawn early does not keep its plain fallbacks.
    for (const tag of ["ha-card", "ha-switch", "ha-button"]) {
      if (!customElements.get(tag)) customElements.whenDefined(tag).then(() => this._render());
    }
  }

  static getStubConfig() {
    return { ...DEFAULT_CONFIG };
  }

  static getConfigElement() {
    return document.createElement(EDITOR_TYPE);
  }

  setConfig(config) {
    this._config = { ...DEFAULT_CONFIG, ...(config ?? {}) };
    this._render();
  }

  set hass(hass) {
    const first = this._hass === null;
    const languageChanged = this._hass && this._hass.language !== hass.language;
    this._hass = hass;
    if (first || languageChanged) {
      this._loadTexts();
      this._subscribe();
      this._render();
    }
  }

  get hass() {
    return this._hass;
  }

  getCardSize() {
    return 2 + 3 * (this._requests?.length ?? 1);
  }

  connectedCallback() {
    this._subscribe();
    // A dashboard that re-lays its columns (a narrower window, say) moves the card, and
    // moving a modal dialog takes it out of the top layer: show it again, modal.
    if (this._confirm && !this._dialog.matches(":modal")) {
      if (this._dialog.open) this._dialog.close();
      this._dialog.showModal();
      this._focusFirstField();
    }
  }

  disconnectedCallback() {
    const unsubscribe = this._unsubscribe;
    this._unsubscribe = null;
    if (unsubscribe) unsubscribe.then((stop) => stop()).catch(() => {});
  }

  async _loadTexts() {
    const hass = this._hass;
    try {
      // The card's own texts, the requester kinds and the hub's error messages.
      await hass.loadBackendTranslation("selector", DOMAIN);
      await hass.loadBackendTranslation("exceptions", DOMAIN);
      this._localize = await hass.loadBackendTranslation("common", DOMAIN);
    } catch (_err) {
      this._localize = hass.localize;
    }
    this._render();
    if (this._confirm) this._renderConfirm();
  }

  // One text of the card, by its key in strings.json's "common" section.
  _t(key, values) {
    const id = localizeKey("common", key);
    // The hass object with the loaded texts may arrive just after the load finishes;
    // until then the localize function the load returned has them.
    const found = this._hass?.localize(id, values) || this._localize?.(id, values) || "";
    // A missing text shows its key, so it is noticed rather than silently blank.
    return found || key;
  }

  _kindText(kind) {
    const id = localizeKey("selector", `requester_kind.options.${kind}`);
    return this._hass?.localize(id) || this._localize?.(id) || kind;
  }

  _stateText(state) {
    return (
      {
        pending: this._t("card_state_pending"),
        approved: this._t("card_state_approved"),
        fulfilled: this._t("card_state_fulfilled"),
      }[state] ?? state
    );
  }

  _outcomeText(outcome) {
    return (
      {
        released: this._t("card_outcome_released"),
        declined: this._t("card_outcome_declined"),
        expired: this._t("card_outcome_expired"),
        revoked: this._t("card_outcome_revoked"),
      }[outcome] ?? outcome
    );
  }

  _historyText(event) {
    return (
      {
        filed: this._t("card_history_filed"),
        approved: this._t("card_history_approved"),
        declined: this._t("card_history_declined"),
        expired: this._t("card_history_expired"),
        revoked: this._t("card_history_revoked"),
        pickup_created: this._t("card_history_pickup_created"),
        downloaded: this._t("card_history_downloaded"),
        upload_started: this._t("card_history_upload_started"),
        uploaded: this._t("card_history_uploaded"),
        upload_failed: this._t("card_history_upload_failed"),
      }[event] ?? event
    );
  }

  // The hub's refusal in the person's language: its translation key, looked up in the
  // integration's exception texts; the hub's own message only if that is missing.
  _errorText(err) {
    const localize = this._hass?.localize;
    if (err?.translation_key && err.translation_domain === DOMAIN && localize) {
      const text = localize(
        localizeKey("exceptions", `${err.translation_key}.message`),
        err.translation_placeholders ?? {},
      );
      if (text) return text;
    }
    return err?.message ?? String(err);
  }

  _announce(message) {
    // Cleared first, so the same result twice is read out twice.
    this._live.textContent = "";
    setTimeout(() => {
      this._live.textContent = message;
    }, 50);
  }

  _subscribe() {
    if (!this._hass || this._unsubscribe || !this.isConnected) return;
    this._unsubscribe = this._hass.connection.subscribeMessage(
      (event) => {
        this._requests = event.requests ?? [];
        this._closed = event.closed ?? [];
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
      const text = this._errorText(err);
      this._errors.set(key, text);
      this._announce(text);
    } finally {
      this._busy.delete(key);
      this._render();
    }
  }

  _decline(request) {
    this._command(request.id, { type: "doorstep/sharing/decline", request_id: request.id }, () =>
      this._announce(this._t("card_declined_done", { requester: request.requester.name })),
    );
  }

  _revoke(request) {
    this._command(request.id, { type: "doorstep/sharing/revoke", request_id: request.id }, () =>
      this._announce(this._t("card_revoked_done", { requester: request.requester.name })),
    );
  }

  _loadRequesters() {
    this._command("requesters", { type: "doorstep/sharing/requesters" }, (result) => {
      this._requesters = result.requesters;
    });
  }

  // The log names people by user id; an admin may list users, so show their names too.
  async _loadUserNames() {
    if (this._userNames) return;
    try {
      const users = await this._hass.callWS({ type: "config/auth/list" });
      this._userNames = new Map(users.map((user) => [`user:${user.id}`, user.name]));
      this._render();
    } catch (_err) {
      this._userNames = new Map(); // ids alone, then: the log is still complete
    }
  }

  _actorText(actor) {
    const name = this._userNames?.get(actor);
    return name ? `${name} (${actor})` : (actor ?? "");
  }

  _runAuditCheck() {
    this._loadUserNames();
    this._command("audit", { type: "doorstep/sharing/audit" }, (result) => {
      this._audit = result;
      const chain = result.chain;
      this._announce(
        chain.ok
          ? this._t("card_audit_chain_ok", { entries: chain.entries })
          : this._t("card_audit_chain_broken", {
              entries: chain.entries,
              problem: chain.problem ?? "",
            }),
      );
    });
  }

  async _exportAudit() {
    this._busy.add("audit-export");
    this._errors.delete("audit");
    this._render();
    try {
      const response = await this._hass.fetchWithAuth(AUDIT_EXPORT_PATH);
      if (!response.ok) {
        let body = null;
        try {
          body = await response.json();
        } catch (_err) {
          // Not JSON: the status line is all there is to say.
        }
        throw body ?? { message: `${response.status} ${response.statusText}` };
      }
      const blob = await response.blob();
      const disposition = response.headers.get("Content-Disposition") ?? "";
      const named = /filename="?([^";]+)"?/.exec(disposition);
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = named ? named[1] : "doorstep-audit.ndjson";
      this.shadowRoot.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
      this._announce(this._t("card_audit_exported", { file: link.download }));
    } catch (err) {
      const text = this._errorText(err);
      this._errors.set("audit", text);
      this._announce(text);
    } finally {
      this._busy.delete("audit-export");
      this._render();
    }
  }

  // -- the confirmation ---------------------------------------------------------------

  _openConfirm(request, toggle) {
    this._confirm = {
      request,
      returnFocus: toggle,
      preview: null,
      stepUp: null,
      error: null,
      busy: true,
      password: "",
      code: "",
      playing: new Set(),
    };
    this._renderConfirm();
    if (!this._dialog.open) this._dialog.showModal();
    this._loadConfirm();
  }

  async _loadConfirm() {
    const confirm = this._confirm;
    if (!confirm) return;
    confirm.busy = true;
    confirm.preview = null;
    this._renderConfirm();
    try {
      const [stepUp, preview] = await Promise.all([
        this._hass.callWS({ type: "doorstep/sharing/step_up" }),
        this._hass.callWS({ type: "doorstep/sharing/preview", request_id: confirm.request.id }),
      ]);
      if (this._confirm !== confirm) return;
      confirm.stepUp = stepUp;
      confirm.preview = preview;
    } catch (err) {
      if (this._confirm !== confirm) return;
      confirm.error = this._errorText(err);
      this._announce(confirm.error);
    }
    confirm.busy = false;
    this._renderConfirm();
    this._focusFirstField();
  }

  _focusFirstField() {
    const field =
      this._dialog.querySelector("input") ??
      this._dialog.querySelector(".approve") ??
      this._dialog.querySelector(".cancel");
    field?.focus();
  }

  _confirmClosed() {
    const confirm = this._confirm;
    this._confirm = null;
    // Stop any clip still playing, and drop the password from the page.
    this._dialog.replaceChildren();
    this._render();
    const toggle = this.shadowRoot.querySelector(
      `.request[data-request-id="${confirm?.request.id}"] .share-toggle`,
    );
    focusWhenDrawn(toggle ?? confirm?.returnFocus);
  }

  _canApprove() {
    const confirm = this._confirm;
    const stepUp = confirm?.stepUp;
    return Boolean(
      confirm?.preview &&
        stepUp?.interactive &&
        stepUp.password &&
        !stepUp.mfa_unsupported &&
        stepUp.is_admin !== false,
    );
  }

  async _approve() {
    const confirm = this._confirm;
    if (!confirm || confirm.busy || !this._canApprove()) return;
    const message = {
      type: "doorstep/sharing/approve",
      request_id: confirm.request.id,
      confirm: confirm.preview.confirm,
      password: confirm.password,
    };
    if (confirm.stepUp.totp) message.code = confirm.code.trim();
    confirm.busy = true;
    confirm.error = null;
    this._renderConfirm();
    try {
      await this._hass.callWS(message);
      if (this._confirm !== confirm) return;
      this._announce(this._t("card_shared_done", { requester: confirm.request.requester.name }));
      this._dialog.close();
      return;
    } catch (err) {
      if (this._confirm !== confirm) return;
      confirm.busy = false;
      confirm.error = this._errorText(err);
      this._announce(confirm.error);
      if (err?.translation_key === "step_up_code_required") confirm.stepUp.totp = true;
      if (err?.translation_key === "step_up_failed") {
        confirm.password = "";
        confirm.code = "";
      }
      if (err?.translation_key === "preview_stale") {
        // What would leave changed under the person's eyes: show them the new set.
        const error = confirm.error;
        await this._loadConfirm();
        confirm.error = error;
      }
    }
    this._renderConfirm();
    this._focusFirstField();
  }

  _renderConfirm() {
    const confirm = this._confirm;
    const dialog = this._dialog;
    if (!confirm) return;
    const hass = this._hass;
    const { request, preview, stepUp } = confirm;
    dialog.replaceChildren();
    dialog.setAttribute("aria-busy", confirm.busy ? "true" : "false");
    const body = make("div", "dialog-body");
    dialog.append(body);
    const title = make(
      "h2",
      "",
      this._t("card_confirm_title", {
        requester: request.requester.name,
        reference: request.reference,
      }),
    );
    title.id = "confirm-title";
    body.append(title);

    if (confirm.busy && !preview) {
      body.append(make("p", "status", this._t("card_confirm_loading")));
    }
    if (preview) {
      const intro = make("p", "", this._t("card_confirm_intro"));
      intro.id = "confirm-summary";
      dialog.setAttribute("aria-describedby", "confirm-summary");
      body.append(intro);
      const leaving = make("dl", "leaving");
      const destination =
        preview.destination?.method === "upload"
          ? this._t("card_destination_upload", { host: preview.destination.host })
          : this._t("card_destination_pickup");
      const rows = [
        ["card_confirm_clips", "clip-count", String(preview.clip_count)],
        [
          "card_confirm_duration",
          "total-duration",
          this._t("card_seconds", { seconds: formatNumber(hass, preview.total_duration_s, 1) }),
        ],
        ["card_confirm_size", "total-size", formatSize(hass, preview.total_bytes)],
        [
          "card_confirm_audio",
          "has-audio",
          preview.has_audio ? this._t("card_audio_yes") : this._t("card_audio_no"),
        ],
        ["card_confirm_destination", "destination", destination],
        ["card_confirm_expires", "expires", formatTime(hass, preview.expires_at)],
      ];
      const labels = {
        card_confirm_clips: this._t("card_confirm_clips"),
        card_confirm_duration: this._t("card_confirm_duration"),
        card_confirm_size: this._t("card_confirm_size"),
        card_confirm_audio: this._t("card_confirm_audio"),
        card_confirm_destination: this._t("card_confirm_destination"),
        card_confirm_expires: this._t("card_confirm_expires"),
      };
      for (const [key, name, value] of rows) {
        const dd = make("dd", name, value);
        leaving.append(make("dt", "", labels[key]), dd);
      }
      body.append(leaving);
      if (preview.clips.length === 0) {
        body.append(make("p", "note", this._t("card_confirm_no_clips")));
      }
      const list = make("ul", "clips");
      list.setAttribute("aria-label", this._t("card_confirm_clip_list"));
      for (const clip of preview.clips) list.append(this._renderClip(clip));
      body.append(list);
      body.append(this._renderProof());
    }

    const error = make("div", "error", confirm.error ?? "");
    error.setAttribute("role", "alert");
    body.append(error);

    const actions = make("div", "actions");
    const cancel = button(this._t("card_cancel"), "cancel", () => dialog.close());
    cancel.setAttribute("appearance", "plain"); // Home Assistant's quiet button
    actions.append(cancel);
    if (this._canApprove()) {
      const approve = button(this._t("card_approve"), "approve", () => this._approve());
      approve.disabled = confirm.busy;
      actions.append(approve);
    }
    body.append(actions);
  }

  _renderClip(clip) {
    const hass = this._hass;
    const confirm = this._confirm;
    const item = make("li", "clip");
    item.dataset.clipId = clip.id;
    const when = formatTime(hass, clip.start);
    const captionValues = {
      time: when,
      seconds: formatNumber(hass, clip.duration_s, 1),
      size: formatSize(hass, clip.size_bytes),
    };
    const caption = clip.has_audio
      ? this._t("card_clip_caption_audio", captionValues)
      : this._t("card_clip_caption", captionValues);
    if (confirm.playing.has(clip.id)) {
      const video = document.createElement("video");
      video.src = clip.video_url;
      video.controls = true;
      video.autoplay = true;
      video.playsInline = true;
      video.preload = "auto";
      video.setAttribute("aria-label", this._t("card_clip_video", { time: when }));
      item.append(video);
    } else {
      const thumb = document.createElement("button");
      thumb.type = "button";
      thumb.className = "thumb";
      thumb.setAttribute("aria-label", this._t("card_clip_play", { time: when }));
      const img = document.createElement("img");
      img.src = clip.thumbnail_url;
      img.alt = "";
      img.loading = "lazy";
      const play = make("span", "play", "\u25b6"); // a play triangle, drawn not read
      play.setAttribute("aria-hidden", "true");
      thumb.append(img, play);
      thumb.addEventListener("click", () => {
        confirm.playing.add(clip.id);
        this._renderConfirm();
        this._dialog.querySelector(`li[data-clip-id="${clip.id}"] video`)?.focus();
      });
      item.append(thumb);
    }
    item.append(make("div", "clip-caption", caption));
    return item;
  }

  _renderProof() {
    const confirm = this._confirm;
    const stepUp = confirm.stepUp;
    const proof = make("div", "proof");
    if (!stepUp) return proof;
    if (!stepUp.interactive) {
      proof.append(make("p", "notice needs-person", this._t("card_step_up_needs_person")));
      return proof;
    }
    if (stepUp.is_admin === false) {
      proof.append(make("p", "notice needs-admin", this._t("card_step_up_needs_admin")));
      return proof;
    }
    if (!stepUp.password) {
      proof.append(make("p", "notice needs-password", this._t("card_step_up_needs_password")));
      return proof;
    }
    if (stepUp.mfa_unsupported) {
      proof.append(
        make("p", "notice mfa-unsupported", this._t("card_step_up_mfa_unsupported")),
      );
      return proof;
    }
    proof.append(make("p", "", this._t("card_step_up_intro")));
    const submitOnEnter = (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        this._approve();
      }
    };
    const password = document.createElement("input");
    password.type = "password";
    password.name = "password";
    password.autocomplete = "current-password";
    password.required = true;
    password.value = confirm.password;
    password.disabled = confirm.busy;
    password.addEventListener("input", () => {
      confirm.password = password.value;
    });
    password.addEventListener("keydown", submitOnEnter);
    const passwordLabel = make("label", "");
    passwordLabel.append(make("span", "", this._t("card_password")), password);
    proof.append(passwordLabel);
    if (stepUp.totp) {
      const code = document.createElement("input");
      code.type = "text";
      code.name = "code";
      code.inputMode = "numeric";
      code.autocomplete = "one-time-code";
      code.maxLength = 8;
      code.required = true;
      code.value = confirm.code;
      code.disabled = confirm.busy;
      code.addEventListener("input", () => {
        confirm.code = code.value;
      });
      code.addEventListener("keydown", submitOnEnter);
      const codeLabel = make("label", "");
      codeLabel.append(make("span", "", this._t("card_totp_code")), code);
      proof.append(codeLabel);
    }
    return proof;
  }

  // -- the card -----------------------------------------------------------------------

  _render() {
    const root = this._container;
    // Keep keyboard focus across a redraw: hub updates arrive while people tab around.
    const focused = this.shadowRoot.activeElement?.closest?.("[data-focus]")?.dataset.focus;
    root.replaceChildren();
    const card = element("ha-card", "div");
    root.append(card);

    const hass = this._hass;
    if (!this._localize) {
      card.setAttribute("aria-busy", "true");
      return;
    }
    const requests = this._requests ?? [];
    const header = make("div", "header");
    header.append(make("h2", "", this._config.title || this._t("card_title")));
    const pending = requests.filter((r) => r.state === "pending").length;
    const count = make("span", pending ? "count" : "count none", String(pending));
    count.setAttribute("aria-label", this._t("card_pending_count", { count: pending }));
    header.append(count);
    card.append(header);

    if (this._unavailable) {
      card.append(make("div", "status", this._t("card_unavailable")));
    } else if (this._requests === null) {
      card.append(make("div", "status", this._t("card_loading")));
    } else if (requests.length === 0) {
      card.append(make("div", "empty", this._t("card_empty")));
    }
    const list = make("div", "requests");
    list.setAttribute("role", "list");
    for (const request of requests) list.append(this._renderRequest(request));
    card.append(list);
    if (this._config.show_closed && this._closed.length) card.append(this._renderClosed());
    if (hass?.user?.is_admin) {
      if (this._config.show_audit) card.append(this._renderAudit());
      if (this._config.show_requesters) card.append(this._renderRequesters());
    }
    if (focused) focusWhenDrawn(this.shadowRoot.querySelector(`[data-focus="${focused}"]`));
  }

  _section(name, summaryText, onOpen) {
    const section = document.createElement("details");
    section.className = `section ${name}`;
    section.open = this._open.has(name);
    section.addEventListener("toggle", () => {
      if (section.open === this._open.has(name)) return;
      if (section.open) this._open.add(name);
      else this._open.delete(name);
      if (section.open && onOpen) onOpen();
    });
    const summary = make("summary", "", summaryText);
    summary.dataset.focus = `${name}-summary`;
    section.append(summary);
    return section;
  }

  _renderRequest(request) {
    const hass = this._hass;
    const block = make("div", "request");
    block.setAttribute("role", "listitem");
    block.dataset.requestId = request.id;

    const who = make("div", "who");
    who.append(
      make("span", "name", request.requester.name),
      make("span", "chip", this._kindText(request.requester.kind)),
      make("span", "chip", request.reference),
      make("span", `chip state-${request.state}`, this._stateText(request.state)),
    );
    block.append(who);

    const details = document.createElement("dl");
    const clipSeconds = request.clips.reduce((sum, clip) => sum + clip.duration_s, 0);
    const clipBytes = request.clips.reduce((sum, clip) => sum + clip.size_bytes, 0);
    const clipsText = request.clips.length
      ? this._t("card_clip_summary", {
          count: request.clips.length,
          seconds: formatNumber(hass, clipSeconds, 1),
          size: formatSize(hass, clipBytes),
        })
      : this._t("card_no_clips");
    const rows = [
      [this._t("card_why"), request.reason],
      [this._t("card_window"), formatRange(hass, request.window.start, request.window.end)],
      [this._t("card_wanted_by"), formatTime(hass, request.wanted_by)],
      [this._t("card_contact"), request.contact],
      [this._t("card_clips"), clipsText],
    ];
    for (const [label, value] of rows) {
      details.append(make("dt", "", label), make("dd", "", value));
    }
    block.append(details);

    const shared = request.state === "approved" || request.state === "fulfilled";
    const busy = this._busy.has(request.id) || this._confirm?.request.id === request.id;
    const decide = make("div", "decide");
    const label = make("label", "toggle");
    const toggle = element("ha-switch", "input");
    if (toggle.tagName === "INPUT") toggle.type = "checkbox";
    toggle.setAttribute("role", "switch");
    toggle.classList.add("share-toggle");
    toggle.dataset.focus = `toggle-${request.id}`;
    toggle.checked = shared;
    toggle.disabled = busy;
    const shareText = this._t("card_share", {
      requester: request.requester.name,
      reference: request.reference,
    });
    toggle.setAttribute("aria-label", shareText);
    toggle.addEventListener("change", () => {
      if (toggle.checked && !shared) {
        // Never on by itself: it stays off until the hub says the request is approved.
        toggle.checked = false;
        this._openConfirm(request, toggle);
      } else if (!toggle.checked && shared) {
        this._revoke(request);
      }
    });
    label.append(toggle, make("span", "", shareText));
    decide.append(label);
    if (request.state === "pending") {
      const decline = button(this._t("card_decline"), "decline", () => this._decline(request));
      decline.dataset.focus = `decline-${request.id}`;
      decline.disabled = busy;
      decide.append(decline);
    }
    block.append(decide);
    if (!shared) block.append(make("div", "note", this._t("card_off_note")));
    // Once shared, what the requester has done with it so far.
    if (shared && request.history?.length) block.append(this._renderHistory(request));
    const error = this._errors.get(request.id);
    if (error) {
      const shown = make("div", "error", error);
      shown.setAttribute("role", "alert");
      block.append(shown);
    }
    return block;
  }

  _renderClosed() {
    const hass = this._hass;
    const section = this._section(
      "closed",
      this._t("card_closed_title", { count: this._closed.length }),
    );
    for (const request of this._closed) {
      const block = make("div", "closed-request");
      block.dataset.requestId = request.id;
      const who = make("div", "who");
      who.append(
        make("span", "name", request.requester.name),
        make("span", "chip", request.reference),
        make("span", `chip outcome-${request.outcome}`, this._outcomeText(request.outcome)),
      );
      block.append(who);
      if (request.closed_at) {
        block.append(
          make("div", "note", this._t("card_closed_at", { time: formatTime(hass, request.closed_at) })),
        );
      }
      block.append(this._renderHistory(request));
      section.append(block);
    }
    return section;
  }

  // A step's detail: how the person proved who they were, which download this was, or
  // a token from the hub (an upload host, an error code) shown as it is.
  _historyDetail(step) {
    const detail = step.detail;
    if (!detail) return null;
    if (step.event === "approved") {
      const how = {
        password: this._t("card_verified_password"),
        "password+totp": this._t("card_verified_password_totp"),
      }[detail];
      if (how) return make("span", "detail", how);
    }
    if (step.event === "downloaded") {
      const [download, of] = detail.split("/");
      if (of !== undefined) {
        return make("span", "detail", this._t("card_download_count", { download, of }));
      }
    }
    return make("code", "detail", detail);
  }

  // What happened to a request, oldest first: filing, the decision, each delivery step.
  _renderHistory(request) {
    const hass = this._hass;
    const history = make("ol", "history");
    history.setAttribute("aria-label", this._t("card_history"));
    for (const step of request.history ?? []) {
      const item = document.createElement("li");
      item.dataset.event = step.event;
      const at = make("time", "", formatTime(hass, step.at));
      at.dateTime = step.at;
      item.append(at, document.createTextNode(this._historyText(step.event)));
      const detail = this._historyDetail(step);
      if (detail) item.append(document.createTextNode(" "), detail);
      history.append(item);
    }
    return history;
  }

  _renderAudit() {
    const hass = this._hass;
    const section = this._section("audit", this._t("card_audit_title"), () => {
      if (this._audit === null && !this._busy.has("audit")) this._runAuditCheck();
    });
    const actions = make("div", "row-actions");
    const check = button(this._t("card_audit_check"), "audit-check", () => this._runAuditCheck());
    check.dataset.focus = "audit-check";
    check.disabled = this._busy.has("audit");
    const exportButton = button(this._t("card_audit_export"), "audit-export", () =>
      this._exportAudit(),
    );
    exportButton.dataset.focus = "audit-export";
    exportButton.disabled = this._busy.has("audit-export");
    actions.append(check, exportButton);
    section.append(actions);

    const audit = this._audit;
    if (audit) {
      const chain = audit.chain;
      const result = make(
        "div",
        chain.ok ? "chain-result ok-result" : "chain-result bad-result",
        chain.ok
          ? this._t("card_audit_chain_ok", { entries: chain.entries })
          : this._t("card_audit_chain_broken", {
              entries: chain.entries,
              problem: chain.problem ?? "",
            }),
      );
      section.append(result);
      const newest = [...audit.entries].reverse().slice(0, AUDIT_SHOWN);
      if (audit.entries.length > AUDIT_SHOWN) {
        section.append(
          make(
            "div",
            "note",
            this._t("card_audit_newest", { shown: AUDIT_SHOWN, total: audit.entries.length }),
          ),
        );
      }
      const scroll = make("div", "audit-scroll");
      scroll.tabIndex = 0; // a scrolling region must be reachable by keyboard
      scroll.setAttribute("role", "region");
      scroll.setAttribute("aria-label", this._t("card_audit_title"));
      const table = make("table", "audit-entries");
      const head = document.createElement("tr");
      for (const text of [
        this._t("card_audit_seq"),
        this._t("card_audit_at"),
        this._t("card_audit_action"),
        this._t("card_audit_request"),
        this._t("card_audit_actor"),
        this._t("card_audit_detail"),
      ]) {
        const th = make("th", "", text);
        th.scope = "col";
        head.append(th);
      }
      const thead = document.createElement("thead");
      thead.append(head);
      const tbody = document.createElement("tbody");
      for (const entry of newest) {
        const row = document.createElement("tr");
        row.append(
          make("td", "", String(entry.seq)),
          make("td", "", formatTime(hass, entry.at)),
          make("td", "mono", entry.action),
          make("td", "mono", entry.request_id ?? ""),
          make("td", "mono", this._actorText(entry.actor)),
          make("td", "mono", auditDetail(entry.detail)),
        );
        tbody.append(row);
      }
      table.append(thead, tbody);
      scroll.append(table);
      section.append(scroll);
    }
    const error = this._errors.get("audit");
    if (error) {
      const shown = make("div", "error", error);
      shown.setAttribute("role", "alert");
      section.append(shown);
    }
    return section;
  }

  _renderRequesters() {
    const section = this._section("requesters", this._t("card_requesters"), () => {
      if (this._requesters === null && !this._busy.has("requesters")) this._loadRequesters();
    });
    if (this._requesters !== null) {
      if (this._requesters.length === 0) {
        section.append(make("div", "note", this._t("card_no_requesters")));
      }
      for (const requester of this._requesters) {
        const row = make("div", "requester");
        const kind = this._kindText(requester.kind);
        row.append(
          make(
            "span",
            "",
            requester.revoked
              ? this._t("card_requester_revoked", { name: requester.name, kind })
              : this._t("card_requester", { name: requester.name, kind }),
          ),
        );
        if (!requester.revoked) {
          const revoke = button(this._t("card_revoke"), "", () =>
            this._command(
              "requesters",
              { type: "doorstep/sharing/requester/revoke", requester_id: requester.id },
              () => this._loadRequesters(),
            ),
          );
          revoke.dataset.focus = `revoke-requester-${requester.id}`;
          revoke.setAttribute(
            "aria-label",
            this._t("card_revoke_requester", { name: requester.name }),
          );
          row.append(revoke);
        }
        section.append(row);
      }
    }
    if (this._newToken) {
      const shown = make("div", "note", this._t("card_token_once", this._newToken));
      shown.append(make("code", "", this._newToken.token));
      section.append(shown);
    }
    const form = make("div", "add");
    const name = document.createElement("input");
    name.value = this._draft.name;
    name.dataset.focus = "requester-name";
    name.addEventListener("input", () => {
      this._draft.name = name.value;
    });
    name.placeholder = this._t("card_requester_name");
    name.setAttribute("aria-label", this._t("card_requester_name"));
    const kind = document.createElement("select");
    kind.dataset.focus = "requester-kind";
    kind.setAttribute("aria-label", this._t("card_requester_kind"));
    for (const value of KINDS) {
      const option = make("option", "", this._kindText(value));
      option.value = value;
      kind.append(option);
    }
    kind.value = this._draft.kind;
    kind.addEventListener("change", () => {
      this._draft.kind = kind.value;
    });
    const add = button(this._t("card_add_requester"), "", () =>
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
    add.dataset.focus = "requester-add";
    form.append(name, kind, add);
    section.append(form);
    const error = this._errors.get("requesters");
    if (error) {
      const shown = make("div", "error", error);
      shown.setAttribute("role", "alert");
      section.append(shown);
    }
    return section;
  }
}

// The visual editor: Home Assistant's own form, driven by a schema, with labels from
// the same translations as the card.
class DoorstepSharingCardEditor extends HTMLElement {
  constructor() {
    super();
    this._config = { ...DEFAULT_CONFIG };
    this._hass = null;
    this._textsLoaded = false;
  }

  setConfig(config) {
    this._config = { ...DEFAULT_CONFIG, ...(config ?? {}) };
    this._render();
  }

  set hass(hass) {
    const first = this._hass === null;
    this._hass = hass;
    if (first) {
      hass
        .loadBackendTranslation("common", DOMAIN)
        .catch(() => {})
        .then(() => {
          this._textsLoaded = true;
          this._render();
        });
      customElements.whenDefined("ha-form").then(() => this._render());
    }
    if (this._form) this._form.hass = hass;
  }

  _t(key) {
    return this._hass?.localize(localizeKey("common", key)) || key;
  }

  _label(name) {
    return (
      {
        title: this._t("card_editor_title"),
        show_closed: this._t("card_editor_show_closed"),
        show_audit: this._t("card_editor_show_audit"),
        show_requesters: this._t("card_editor_show_requesters"),
      }[name] ?? name
    );
  }

  _changed(config) {
    this._config = config;
    this.dispatchEvent(
      new CustomEvent("config-changed", { detail: { config }, bubbles: true, composed: true }),
    );
  }

  _render() {
    if (!this._hass || !this._textsLoaded) return;
    const schema = [
      { name: "title", selector: { text: {} } },
      { name: "show_closed", selector: { boolean: {} } },
      { name: "show_audit", selector: { boolean: {} } },
      { name: "show_requesters", selector: { boolean: {} } },
    ];
    if (customElements.get("ha-form")) {
      if (!this._form) {
        this._form = document.createElement("ha-form");
        this._form.addEventListener("value-changed", (event) =>
          this._changed({ ...this._config, ...event.detail.value }),
        );
        this.replaceChildren(this._form);
      }
      this._form.hass = this._hass;
      this._form.schema = schema;
      this._form.data = this._config;
      this._form.computeLabel = (item) => this._label(item.name);
      return;
    }
    // Before Home Assistant has loaded its form: plain fields doing the same.
    this.replaceChildren();
    for (const item of schema) {
      const label = document.createElement("label");
      label.style.display = "block";
      const input = document.createElement("input");
      input.name = item.name;
      if (item.selector.boolean) {
        input.type = "checkbox";
        input.checked = Boolean(this._config[item.name]);
        input.addEventListener("change", () =>
          this._changed({ ...this._config, [item.name]: input.checked }),
        );
        label.append(input, document.createTextNode(` ${this._label(item.name)}`));
      } else {
        input.value = this._config[item.name] ?? "";
        input.addEventListener("change", () =>
          this._changed({ ...this._config, [item.name]: input.value }),
        );
        label.append(document.createTextNode(`${this._label(item.name)} `), input);
      }
      this.append(label);
    }
  }
}

function defineCard() {
  if (window.customElements.get(CARD_TYPE)) return;
  window.customElements.define(CARD_TYPE, DoorstepSharingCard);
  window.customElements.define(EDITOR_TYPE, DoorstepSharingCardEditor);
  window.customCards = window.customCards || [];
  // The card picker lists this before any translation can load; name and description
  // are the picker's own English, as for every custom card.
  window.customCards.push({
    type: CARD_TYPE,
    name: "Doorstep footage requests",
    description:
      "Requests for doorbell footage, each behind its own switch (off until you confirm what leaves), with a Decline button.",
    preview: false,
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
