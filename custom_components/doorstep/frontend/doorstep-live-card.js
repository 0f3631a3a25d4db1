// Doorstep's live player card: the doorbell's picture and sound, and a push-to-talk
// button, without Home Assistant's Labs switch.
//
// It negotiates through Home Assistant's own `camera/webrtc/offer` websocket command,
// with a peer connection that has NO ICE servers: the browser then offers only its own
// addresses, and contacts nothing outside the house (invariant I4 by default). While the
// talk button is held the microphone track is enabled and `doorstep/live/talk` tells the
// hub to forward it to the doorbell's speaker; letting go (or leaving) stops that.
//
// Plain JavaScript with no imports, so there is nothing to build.

const CARD_TYPE = "doorstep-live-card";
const EDITOR_TYPE = "doorstep-live-card-editor";
const DOMAIN = "doorstep";

// Scoped: a key the card uses is looked up under component.doorstep.<category>.
function localizeKey(category, key) {
  return `component.${DOMAIN}.${category}.${key}`;
}

// One text of the card, by its key in strings.json's "common" section. `loaded` is the
// localize function the translation load returned: the hass object that carries those
// texts may arrive a moment after the load finishes.
function text(hass, loaded, key, values = {}) {
  const id = localizeKey("common", key);
  // A missing text shows its key, so it is noticed rather than silently blank.
  return hass?.localize?.(id, values) || loaded?.(id, values) || key;
}

// The header: the `name` option, else the camera's friendly name, else its entity id.
function cardName(hass, config) {
  if (typeof config.name === "string" && config.name.trim()) return config.name;
  return hass?.states?.[config.entity]?.attributes?.friendly_name || config.entity;
}

// The error a websocket command sent, as the person should read it: Home Assistant
// translates Doorstep's own errors and puts the sentence in `message`.
function errorMessage(err) {
  return err?.message ?? err?.error?.message ?? String(err);
}

class DoorstepLiveCard extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._hass = null;
    this._localize = null; // set once the integration's texts are loaded
    this._pc = null;
    this._unsubscribe = null;
    this._sessionId = null;
    this._microphone = null;
    this._talking = false;
    // The status line as a function, so it can be said again once the texts load.
    this._status = null;
    // For the tests and the curious: what this card's peer connection was built with.
    this.iceServersUsed = null;
  }

  setConfig(config) {
    if (!config || typeof config.entity !== "string" || !config.entity.startsWith("camera.")) {
      throw new Error("entity: a camera entity id is required");
    }
    if (config.name !== undefined && typeof config.name !== "string") {
      throw new Error("name: text expected");
    }
    if (config.show_name !== undefined && typeof config.show_name !== "boolean") {
      throw new Error("show_name: true or false expected");
    }
    const before = this._config;
    this._config = config;
    // A new camera means a new live view; a new name or header only needs redrawing.
    if (before && before.entity !== config.entity) this.stop();
    this._render();
  }

  set hass(hass) {
    const before = this._hass;
    this._hass = hass;
    if (!before) {
      this._render();
      this._loadTexts();
    } else if (hass.localize !== before.localize) {
      // Texts arrived (or the language changed). Two cards asking at once both wait
      // on one load, and the one that asked second may hear back before the texts
      // are in; the next hass object has them either way.
      this._sayTexts();
    } else {
      this._showName();
    }
  }

  getCardSize() {
    return this._config?.show_name === false ? 5 : 6;
  }

  // A new card starts on a Doorstep camera the person has, if there is one.
  static getStubConfig(hass) {
    const cameras = Object.keys(hass?.entities ?? {}).filter(
      (id) => id.startsWith("camera.") && hass.entities[id].platform === DOMAIN,
    );
    return { entity: cameras.sort()[0] ?? "camera.front_door" };
  }

  static getConfigElement() {
    return document.createElement(EDITOR_TYPE);
  }

  disconnectedCallback() {
    this.stop();
  }

  async _loadTexts() {
    const hass = this._hass;
    try {
      // The card's own texts and the hub's error messages.
      await hass.loadBackendTranslation("exceptions", DOMAIN);
      this._localize = await hass.loadBackendTranslation("common", DOMAIN);
    } catch (_err) {
      this._localize = hass.localize;
    }
    this._sayTexts();
  }

  _t(key, values) {
    return text(this._hass, this._localize, key, values);
  }

  _render() {
    if (!this.shadowRoot || !this._config) return;
    if (this._pc) {
      // Live: keep the video and its buttons, only the header may change.
      this._showName();
      return;
    }
    const showName = this._config.show_name !== false;
    this.shadowRoot.innerHTML = `
      <style>
        ha-card { overflow: hidden; }
        .name {
          margin: 0; padding: 12px 16px; font-size: 1.25em; font-weight: 500; line-height: 1.4;
          color: var(--ha-card-header-color, var(--primary-text-color));
          overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
        }
        video { width: 100%; background: #000; display: block; aspect-ratio: 16 / 9; }
        .bar { display: flex; gap: 8px; padding: 8px 12px; align-items: center; flex-wrap: wrap; }
        button { font: inherit; padding: 8px 14px; border-radius: 18px; border: 1px solid var(--divider-color, #ccc);
          background: var(--card-background-color, #fff); color: var(--primary-text-color, #000); cursor: pointer; }
        button.talk { touch-action: none; user-select: none; }
        button.talk[data-talking="true"] { background: var(--error-color, #c62828); color: #fff; }
        button:disabled { opacity: 0.5; cursor: default; }
        .status { color: var(--secondary-text-color, #666); font-size: 0.9em; }
      </style>
      <ha-card>
        ${showName ? '<h2 class="name"></h2>' : ""}
        <video playsinline></video>
        <div class="bar">
          <button class="start"></button>
          <button class="talk" disabled></button>
          <span class="status" role="status"></span>
        </div>
      </ha-card>`;
    const root = this.shadowRoot;
    this._nameLine = root.querySelector(".name");
    this._video = root.querySelector("video");
    this._startButton = root.querySelector("button.start");
    this._talkButton = root.querySelector("button.talk");
    this._statusLine = root.querySelector(".status");
    this._startButton.addEventListener("click", () => (this._pc ? this.stop() : this.start()));
    const press = (event) => {
      event.preventDefault();
      this._setTalking(true);
    };
    const release = () => this._setTalking(false);
    this._talkButton.addEventListener("pointerdown", press);
    this._talkButton.addEventListener("pointerup", release);
    this._talkButton.addEventListener("pointerleave", release);
    this._talkButton.addEventListener("pointercancel", release);
    this._talkButton.addEventListener("keydown", (event) => {
      if ((event.key === " " || event.key === "Enter") && !event.repeat) press(event);
    });
    this._talkButton.addEventListener("keyup", (event) => {
      if (event.key === " " || event.key === "Enter") release();
    });
    this._sayTexts();
  }

  // Every text on the card, in the person's language; called again once they load.
  _sayTexts() {
    if (!this._startButton) return;
    this._showName();
    this._startButton.textContent = this._pc ? this._t("card_live_stop") : this._t("card_live_start");
    this._talkButton.textContent = this._talking
      ? this._t("card_live_talking")
      : this._t("card_live_talk");
    this._statusLine.textContent = this._status ? this._status() : "";
  }

  // The door this card shows, so two cards on one view can be told apart; the video
  // carries it too, for screen readers, even when the header is hidden.
  _showName() {
    if (!this._video || !this._config) return;
    const name = cardName(this._hass, this._config);
    if (this._nameLine && this._nameLine.textContent !== name) this._nameLine.textContent = name;
    if (this._video.getAttribute("aria-label") !== name) this._video.setAttribute("aria-label", name);
  }

  _showStatus(say) {
    this._status = say;
    if (this._statusLine) this._statusLine.textContent = say ? say() : "";
  }

  async start() {
    const hass = this._hass;
    if (!hass || this._pc) return;
    this._showStatus(() => this._t("card_live_connecting"));
    this._startButton.textContent = this._t("card_live_stop");
    // No ICE servers at all: no STUN request ever leaves the house.
    const configuration = { iceServers: [] };
    this.iceServersUsed = configuration.iceServers;
    const pc = new RTCPeerConnection(configuration);
    this._pc = pc;
    const stream = new MediaStream();
    this._video.srcObject = stream;
    pc.ontrack = (event) => {
      stream.addTrack(event.track);
      this._video.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") this._showStatus(() => this._t("card_live_live"));
      if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        if (this._pc === pc) this._ended();
      }
    };
    pc.addTransceiver("video", { direction: "recvonly" });
    this._microphone = await this._openMicrophone();
    if (this._pc !== pc) return; // stopped while the browser asked for the microphone
    if (this._microphone) {
      // Muted until the talk button is held; the track still negotiates sendrecv.
      this._microphone.enabled = false;
      pc.addTransceiver(this._microphone, { direction: "sendrecv" });
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
      this._showStatus(() => this._t("card_live_no_mic"));
    }
    pc.onicecandidate = (event) => {
      if (event.candidate && this._sessionId) this._sendCandidate(event.candidate);
    };
    await pc.setLocalDescription(await pc.createOffer());
    try {
      this._unsubscribe = await hass.connection.subscribeMessage(
        (message) => this._onSignal(pc, message),
        { type: "camera/webrtc/offer", entity_id: this._config.entity, offer: pc.localDescription.sdp },
      );
    } catch (err) {
      this._fail(err);
    }
  }

  async _openMicrophone() {
    if (!navigator.mediaDevices?.getUserMedia) return null;
    try {
      const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      return media.getAudioTracks()[0] ?? null;
    } catch (_err) {
      return null;
    }
  }

  async _onSignal(pc, message) {
    if (this._pc !== pc) return;
    switch (message.type) {
      case "session":
        this._sessionId = message.session_id;
        break;
      case "answer":
        await pc.setRemoteDescription({ type: "answer", sdp: message.answer });
        if (this._microphone && /m=audio[^]*?a=(sendrecv|recvonly)/.test(message.answer)) {
          this._talkButton.disabled = false;
        }
        break;
      case "candidate":
        if (message.candidate?.candidate) {
          await pc.addIceCandidate({
            candidate: message.candidate.candidate,
            sdpMid: message.candidate.sdp_mid ?? message.candidate.sdpMid ?? null,
            sdpMLineIndex: message.candidate.sdp_m_line_index ?? message.candidate.sdpMLineIndex ?? 0,
          });
        }
        break;
      case "error":
        this._fail(message);
        break;
      default:
        break;
    }
  }

  _sendCandidate(candidate) {
    this._hass.callWS({
      type: "camera/webrtc/candidate",
      entity_id: this._config.entity,
      session_id: this._sessionId,
      candidate: {
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid,
        sdpMLineIndex: candidate.sdpMLineIndex,
      },
    }).catch(() => {});
  }

  async _setTalking(talking) {
    if (talking === this._talking || !this._microphone || !this._sessionId) return;
    if (talking && this._talkButton.disabled) return;
    this._talking = talking;
    this._microphone.enabled = talking;
    this._talkButton.dataset.talking = String(talking);
    this._talkButton.textContent = talking ? this._t("card_live_talking") : this._t("card_live_talk");
    try {
      await this._hass.callWS({
        type: "doorstep/live/talk",
        entity_id: this._config.entity,
        session_id: this._sessionId,
        talking,
      });
      if (!talking) this._showStatus(() => this._t("card_live_live"));
    } catch (err) {
      this._talking = false;
      this._microphone.enabled = false;
      this._talkButton.dataset.talking = "false";
      this._talkButton.textContent = this._t("card_live_talk");
      const message = errorMessage(err);
      this._showStatus(() => this._t("card_live_error", { message }));
    }
  }

  _fail(err) {
    const message = errorMessage(err);
    this.stop();
    this._showStatus(() => this._t("card_live_error", { message }));
  }

  _ended() {
    this.stop();
    this._showStatus(() => this._t("card_live_ended"));
  }

  stop() {
    const pc = this._pc;
    this._pc = null;
    if (this._talking && this._sessionId && this._hass) {
      this._hass.callWS({
        type: "doorstep/live/talk",
        entity_id: this._config.entity,
        session_id: this._sessionId,
        talking: false,
      }).catch(() => {});
    }
    this._talking = false;
    if (this._unsubscribe) {
      this._unsubscribe().catch?.(() => {});
      this._unsubscribe = null;
    }
    if (this._microphone) {
      this._microphone.stop();
      this._microphone = null;
    }
    if (pc) pc.close();
    this._sessionId = null;
    if (this._video) this._video.srcObject = null;
    if (this._startButton) this._startButton.textContent = this._t("card_live_start");
    if (this._talkButton) {
      this._talkButton.disabled = true;
      this._talkButton.dataset.talking = "false";
      this._talkButton.textContent = this._t("card_live_talk");
    }
  }
}

// The card's editor: which camera, and the header (its own name, or none).
class DoorstepLiveCardEditor extends HTMLElement {
  constructor() {
    super();
    this._hass = null;
    this._config = {};
    this._form = null;
    this._textsLoaded = false;
  }

  setConfig(config) {
    this._config = { ...config };
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
        entity: this._t("card_live_editor_entity"),
        name: this._t("card_live_editor_name"),
        show_name: this._t("card_live_editor_show_name"),
      }[name] ?? name
    );
  }

  _changed(config) {
    const next = { ...config };
    // An emptied name field means "the camera's own name", not an empty header.
    if (!next.name) delete next.name;
    this._config = next;
    this.dispatchEvent(
      new CustomEvent("config-changed", { detail: { config: next }, bubbles: true, composed: true }),
    );
  }

  _render() {
    if (!this._hass || !this._textsLoaded) return;
    const schema = [
      { name: "entity", required: true, selector: { entity: { domain: "camera", integration: DOMAIN } } },
      { name: "name", selector: { text: {} } },
      { name: "show_name", selector: { boolean: {} } },
    ];
    const data = { show_name: true, ...this._config };
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
      this._form.data = data;
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
        input.checked = data[item.name] !== false;
        input.addEventListener("change", () =>
          this._changed({ ...this._config, [item.name]: input.checked }),
        );
        label.append(input, document.createTextNode(` ${this._label(item.name)}`));
      } else {
        input.value = data[item.name] ?? "";
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
  window.customElements.define(CARD_TYPE, DoorstepLiveCard);
  window.customElements.define(EDITOR_TYPE, DoorstepLiveCardEditor);
  window.customCards = window.customCards || [];
  // The card picker lists this before any translation can load; name and description
  // are the picker's own English, as for every custom card.
  window.customCards.push({
    type: CARD_TYPE,
    name: "Doorstep live view",
    description: "The doorbell's picture and sound, with a push-to-talk button.",
    preview: false,
  });
}

// As for the sharing card: Home Assistant's app bundle swaps window.customElements for
// a scoped-registry polyfill when it loads, and an element defined in the registry
// being replaced is invisible to the dashboard. Define the card once Home Assistant's
// own root element is in the registry in use, which happens after the swap.
(function defineWhenHomeAssistantIsReady() {
  if (window.customElements.get("home-assistant")) defineCard();
  else setTimeout(defineWhenHomeAssistantIsReady, 50);
})();
