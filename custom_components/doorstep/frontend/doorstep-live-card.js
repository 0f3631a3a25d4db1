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

const STRINGS = {
  en: {
    start: "Start live view",
    stop: "Stop",
    connecting: "Connecting…",
    live: "Live",
    talk: "Hold to talk",
    talking: "Talking…",
    no_mic: "No microphone: talking is not possible from this browser.",
    no_entity: "Choose a Doorstep camera for this card (entity: camera.…).",
    error: "Not possible: {message}",
    ended: "The live view ended.",
  },
};

function text(hass, key, values = {}) {
  const language = hass?.locale?.language ?? hass?.language ?? "en";
  const table = STRINGS[language] ?? STRINGS.en;
  const template = table[key] ?? STRINGS.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_match, name) => String(values[name] ?? ""));
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
    this._pc = null;
    this._unsubscribe = null;
    this._sessionId = null;
    this._microphone = null;
    this._talking = false;
    this._status = "";
    // For the tests and the curious: what this card's peer connection was built with.
    this.iceServersUsed = null;
  }

  setConfig(config) {
    if (!config || typeof config.entity !== "string" || !config.entity.startsWith("camera.")) {
      throw new Error("entity: a camera entity id is required");
    }
    this._config = config;
    this._render();
  }

  set hass(hass) {
    const first = !this._hass;
    this._hass = hass;
    if (first) this._render();
  }

  getCardSize() {
    return 5;
  }

  static getStubConfig() {
    return { entity: "camera.front_door" };
  }

  disconnectedCallback() {
    this.stop();
  }

  _render() {
    if (!this.shadowRoot || !this._config) return;
    const hass = this._hass;
    this.shadowRoot.innerHTML = `
      <style>
        ha-card { overflow: hidden; }
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
        <video playsinline></video>
        <div class="bar">
          <button class="start">${text(hass, "start")}</button>
          <button class="talk" disabled>${text(hass, "talk")}</button>
          <span class="status" role="status"></span>
        </div>
      </ha-card>`;
    const root = this.shadowRoot;
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
    this._showStatus(this._status);
  }

  _showStatus(message) {
    this._status = message;
    if (this._statusLine) this._statusLine.textContent = message;
  }

  async start() {
    const hass = this._hass;
    if (!hass || this._pc) return;
    this._showStatus(text(hass, "connecting"));
    this._startButton.textContent = text(hass, "stop");
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
      if (pc.connectionState === "connected") this._showStatus(text(hass, "live"));
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
      this._showStatus(text(hass, "no_mic"));
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
    this._talkButton.textContent = text(this._hass, talking ? "talking" : "talk");
    try {
      await this._hass.callWS({
        type: "doorstep/live/talk",
        entity_id: this._config.entity,
        session_id: this._sessionId,
        talking,
      });
      if (!talking) this._showStatus(text(this._hass, "live"));
    } catch (err) {
      this._talking = false;
      this._microphone.enabled = false;
      this._talkButton.dataset.talking = "false";
      this._talkButton.textContent = text(this._hass, "talk");
      this._showStatus(text(this._hass, "error", { message: errorMessage(err) }));
    }
  }

  _fail(err) {
    const message = errorMessage(err);
    this.stop();
    this._showStatus(text(this._hass, "error", { message }));
  }

  _ended() {
    this.stop();
    this._showStatus(text(this._hass, "ended"));
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
    if (this._startButton) this._startButton.textContent = text(this._hass, "start");
    if (this._talkButton) {
      this._talkButton.disabled = true;
      this._talkButton.dataset.talking = "false";
      this._talkButton.textContent = text(this._hass, "talk");
    }
  }
}

function defineCard() {
  if (window.customElements.get(CARD_TYPE)) return;
  window.customElements.define(CARD_TYPE, DoorstepLiveCard);
  window.customCards = window.customCards || [];
  window.customCards.push({
    type: CARD_TYPE,
    name: "Doorstep live view",
    description: "The doorbell's picture and sound, with a push-to-talk button.",
  });
}

// As in the sharing card: Home Assistant's app bundle swaps window.customElements for a
// scoped-registry polyfill as it loads. Defined before that swap, the card sits in a
// registry the dashboard no longer reads and shows as "Configuration error" until a
// reload, so wait for Home Assistant's root element to be in the registry in use.
(function defineWhenHomeAssistantIsReady() {
  if (window.customElements.get("home-assistant")) defineCard();
  else setTimeout(defineWhenHomeAssistantIsReady, 50);
})();
