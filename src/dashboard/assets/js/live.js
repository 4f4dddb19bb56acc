// Live state shared by the views: the devices and the open alerts, kept current by the
// server's event stream, or by polling when the server has no stream.

import * as api from '/assets/js/api.js';

const POLL_MS = 3000;
const ALERT_POLL_MS = 10000;
/** How soon a dropped stream is opened again (with a new ticket). */
const RETRY_MS = 5000;
/** A device not heard from for this long is shown as silent. */
export const SILENT_MS = 20 * 60 * 1000;
const BREACH_EVENTS = new Set(['rope_cut', 'case_breach']);
/** The server names each event by its kind; EventSource hears only the names listened to. */
const STREAM_KINDS = [
  'position', 'resync', 'enter', 'exit', 'cross', 'border_crossed', 'crossing_outside_bcp',
  'route_deviation', 'route_deviation_critical', 'route_deviation_ended', 'wrong_direction', 'unauthorised_stop', 'stop_ended',
  'signal_lost', 'signal_restored', 'tracking_gap', 'gnss_anomaly', 'seal_alarm',
  'transit.declared', 'transit.status_changed', 'transit.alert_raised', 'transit.alert_updated',
  'transit.alert_escalated',
  'transit.inspection_recorded', 'transit.bcp_passed', 'transit.section_completed',
  'transit.seal_opened_at_control',
];
const ALERT_KINDS = new Set([
  'transit.alert_raised', 'transit.alert_updated', 'transit.alert_escalated', 'resync',
]);

export class Live extends EventTarget {
  constructor() {
    super();
    this.devices = new Map();
    this.alerts = [];
    this.alertsAvailable = null;
    this.mode = 'connecting';
    this.timers = [];
    this.stream = null;
    this.refreshQueued = null;
    this.seenAlerts = null;
  }

  start() {
    this.refreshDevices();
    this.refreshAlerts();
    this.openStream();
    this.timers.push(setInterval(() => this.refreshAlerts(), ALERT_POLL_MS));
  }

  stop() {
    this.timers.forEach(clearInterval);
    this.timers = [];
    this.stream?.close();
    this.stream = null;
  }

  setMode(mode) {
    this.mode = mode;
    this.dispatchEvent(new CustomEvent('mode', { detail: mode }));
  }

  // EventSource cannot send a token header, and tokens never go in a URL: each connection
  // is opened with a single-use ticket that is valid for a minute. A ticket cannot be
  // reused, so after an error the stream is opened again with a new one.
  async openStream() {
    if (!window.EventSource) return this.startPolling();
    let ticket;
    try {
      ({ ticket } = await api.post('/api/v1/stream/ticket'));
    } catch {
      return this.startPolling();
    }
    const url = api.withQuery('/api/v1/stream', { ticket });
    const stream = new EventSource(url);
    this.stream = stream;
    stream.onopen = () => {
      this.stopPolling();
      this.setMode('stream');
      this.refreshDevices();
    };
    stream.onerror = () => {
      stream.close();
      if (this.stream !== stream) return;
      this.stream = null;
      this.startPolling();
      this.setMode('reconnecting');
      setTimeout(() => {
        if (!this.stream && this.timers.length) this.openStream();
      }, RETRY_MS);
    };
    for (const kind of STREAM_KINDS) stream.addEventListener(kind, (e) => this.onStreamEvent(kind, e));
    stream.onmessage = (e) => this.onStreamEvent('message', e);
  }

  startPolling() {
    if (this.poller) return;
    this.setMode('polling');
    this.poller = setInterval(() => this.refreshDevices(), POLL_MS);
  }

  stopPolling() {
    clearInterval(this.poller);
    this.poller = null;
  }

  onStreamEvent(kind, event) {
    let data = null;
    try {
      data = JSON.parse(event.data);
    } catch {
      data = null;
    }
    const placed = data && kind === 'position' && this.applyPosition(data);
    this.dispatchEvent(new CustomEvent('event', { detail: { kind, data } }));
    if (ALERT_KINDS.has(kind)) this.refreshAlerts();
    if (!placed && !this.refreshQueued) {
      this.refreshQueued = setTimeout(() => {
        this.refreshQueued = null;
        this.refreshDevices();
      }, 1000);
    }
  }

  applyPosition(data) {
    const id = data.device_id;
    const device = id && this.devices.get(id);
    const fix = data.position;
    if (!device || typeof fix?.lat !== 'number' || typeof fix?.lon !== 'number') return false;
    for (const key of ['position', 'last_seen_at', 'seal', 'geo', 'battery_pct']) {
      if (key in data) device[key] = data[key];
    }
    this.dispatchEvent(new CustomEvent('devices'));
    return true;
  }

  async refreshDevices() {
    try {
      const all = new Map();
      let after = null;
      for (let page = 0; page < 20; page += 1) {
        const data = await api.get(api.withQuery('/api/v1/devices', { after, limit: 1000 }));
        for (const d of api.listOf(data, 'devices')) all.set(d.device_id, d);
        after = data?.next;
        if (!after) break;
      }
      this.devices = all;
      this.dispatchEvent(new CustomEvent('devices'));
    } catch (error) {
      this.dispatchEvent(new CustomEvent('failure', { detail: error }));
    }
  }

  async refreshAlerts() {
    if (this.alertsAvailable === false) return;
    try {
      const data = await api.get('/api/v1/alerts?limit=1000');
      const alerts = api.listOf(data, 'alerts', 'items');
      this.alertsAvailable = true;
      const fresh = this.seenAlerts ? alerts.filter((a) => !this.seenAlerts.has(a.id)) : [];
      this.seenAlerts = new Set(alerts.map((a) => a.id));
      this.alerts = alerts;
      this.dispatchEvent(new CustomEvent('alerts', { detail: { fresh } }));
    } catch (error) {
      if (error instanceof api.NotAvailable) {
        this.alertsAvailable = false;
        this.dispatchEvent(new CustomEvent('alerts', { detail: { fresh: [] } }));
      }
    }
  }

  /** moving, stopped, at_bcp, alert or silent: what the map shows for a device. */
  status(device, postIds, now = Date.now()) {
    const alerting = this.alerts.some((a) => a.device_id === device.device_id && a.state !== 'resolved');
    if (alerting || BREACH_EVENTS.has(device.seal?.event)) return 'alert';
    // Device time of the latest fix: a backlog received now still shows an old position.
    const seen = Date.parse(device.position?.t ?? device.last_seen_at ?? '');
    if (Number.isNaN(seen) || now - seen > SILENT_MS) return 'silent';
    if ((device.geo?.zones ?? []).some((zone) => postIds.has(zone))) return 'at_bcp';
    return (device.position?.speed_kmh ?? 0) >= 5 ? 'moving' : 'stopped';
  }
}
