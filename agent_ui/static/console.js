/* Switchboard agent console.
 * Renders only from the latest `state` snapshot the server pushes on /agent; the little local state kept
 * here (pending acks, the wrap-up draft, the mute preference) is UI bookkeeping, never call state. */
'use strict';

(() => {
  const ACTION_TIMEOUT_MS = 10000;
  const RETRY_AFTER_REFUSAL_MS = 10000;
  const RING_EVERY_MS = 2000;
  const MUTE_KEY = 'switchboard.muteRing';
  const PRESENCE_WORDS = { available: 'Available', break: 'Break', offline: 'Offline' };
  const WORK_WORDS = { idle: 'Idle', offered: 'Offered', on_call: 'On call', wrap_up: 'Wrap-up' };
  const TIMELINE_KINDS = {
    call: 'Call', note: 'Note', disposition: 'Disposition', transfer: 'Transfer', order: 'Order',
    tier: 'Tier change', stage: 'Stage change', outbound: 'Outbound call', handoff: 'Handoff',
    callback: 'Callback', voicemail: 'Voicemail', dnc: 'Do not call', complaint: 'Complaint',
  };
  const CALLBACK_KINDS = {
    campaign: 'Campaign callback', queue: 'Queue callback (keeps their place)', scheduled: 'Booked callback',
  };
  const SHORTCUTS = { a: 'btn-accept', d: 'btn-decline', h: 'btn-hangup', o: 'btn-hold', m: 'btn-mute' };
  const MODE_WORDS = { listen: 'listening', whisper: 'whispering to you', barge: 'on the call' };

  const $ = (id) => document.getElementById(id);

  const view = {
    snapshot: null,
    skewMs: 0,
    connected: false,
    pending: new Set(),
    wrapupSid: null, // call the wrap-up draft belongs to; a new call starts a fresh draft
    scriptSid: null, // call the screening form was built for
    targetsSid: null, // call the transfer and supervisor lists were loaded for
  };
  let socket = null;
  const { parseTime, formatDuration, el, humanize } = window.Switchboard;
  const HEARTBEAT_MS = 20000;

  /* ---------- time ---------- */

  function serverNow() {
    return Date.now() + view.skewMs;
  }

  function secondsSince(iso) {
    const t = parseTime(iso);
    return Number.isNaN(t) ? 0 : Math.max(0, Math.floor((serverNow() - t) / 1000));
  }

  function secondsUntil(iso) {
    const t = parseTime(iso);
    return Number.isNaN(t) ? 0 : Math.max(0, Math.ceil((t - serverNow()) / 1000));
  }

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

  function formatDate(iso) {
    const t = parseTime(iso);
    return Number.isNaN(t) ? '' : dateFormat.format(new Date(t));
  }

  /* ---------- DOM helpers (text only: data never goes through innerHTML) ---------- */

  // Rebuilds a <select>'s options only when the list changed, so the user's current choice survives snapshots.
  function syncOptions(select, values, placeholder) {
    const wanted = (placeholder === undefined ? [] : ['']).concat(values || []);
    const current = Array.from(select.options, (o) => o.value);
    if (current.length === wanted.length && current.every((v, i) => v === wanted[i])) return;
    const keep = select.value;
    select.replaceChildren(...wanted.map((v) => {
      const option = el('option', null, v === '' ? placeholder : humanize(v));
      option.value = v;
      return option;
    }));
    if (wanted.includes(keep)) select.value = keep;
  }

  function setError(message = '') {
    $('error').textContent = message;
  }

  /* ---------- rendering ---------- */

  function render() {
    $('console').dataset.connected = String(view.connected);
    const s = view.snapshot;
    if (!s) return;
    renderStatus(s.agent);
    renderPresenceControls(s);
    renderPanels(s);
    updateRing(s);
    tick();
  }

  function renderStatus(agent) {
    $('presence').textContent = PRESENCE_WORDS[agent.presence] || humanize(agent.presence);
    $('break-label').textContent =
      agent.presence === 'break' && agent.break_reason ? `(${humanize(agent.break_reason)})` : '';
    $('work').textContent = WORK_WORDS[agent.work] || humanize(agent.work);
    $('calls-today').textContent = String(agent.calls_today ?? 0);
    const strip = document.querySelector('.status-strip');
    strip.dataset.presence = agent.presence;
    strip.dataset.work = agent.work;
  }

  function renderPresenceControls(s) {
    const { presence, break_reason: breakReason } = s.agent;
    const select = $('break-reason');
    const blocked = !view.connected || view.pending.has('set_presence');
    syncOptions(select, s.break_reasons);
    if (presence === 'break' && breakReason && !select.dataset.touched) select.value = breakReason;
    $('btn-available').disabled = blocked || presence === 'available';
    $('btn-offline').disabled = blocked || presence === 'offline';
    select.disabled = blocked || !(s.break_reasons || []).length;
    $('btn-break').disabled = blocked || (presence === 'break' && select.value === (breakReason || ''));
  }

  function renderPanels(s) {
    const { offer, call, agent } = s;
    const onCall = Boolean(call) && agent.work === 'on_call';
    const wrapping = Boolean(call) && agent.work === 'wrap_up';
    $('offer').hidden = !offer;
    $('call').hidden = !onCall;
    $('wrapup').hidden = !wrapping;
    const previewing = Boolean(s.preview) && !offer && !onCall && !wrapping;
    $('preview').hidden = !previewing;
    if (previewing) renderPreview(s.preview);
    const campaigns = s.manual_dial_campaigns || [];
    const canDial = !offer && !onCall && !wrapping && !previewing && campaigns.length > 0 &&
      agent.presence === 'available' && agent.work === 'idle';
    $('manual-dial').hidden = !canDial;
    if (canDial) renderManualDial(campaigns);
    $('idle').hidden = Boolean(offer || onCall || wrapping || previewing);
    if (offer) renderOffer(offer);
    if (onCall) renderCall(call);
    if (wrapping) renderWrapup(s);
    if (!$('idle').hidden) $('idle-message').textContent = idleMessage(agent);
    renderScript((onCall || wrapping) && call.outbound ? call : null);
    const customer = offer ? offer.customer : (onCall || wrapping ? call.customer : (previewing ? s.preview.customer : null));
    renderCustomer(customer);
    document.title = offer ? `Incoming call — ${offer.queue} · Switchboard` : 'Console · Switchboard';
  }

  function idleMessage(agent) {
    if (agent.presence === 'available') return 'Waiting for the next call…';
    if (agent.presence === 'break') return 'You are on a break. Choose Available to take calls again.';
    return 'You are offline. Choose Available to start taking calls.';
  }

  function renderOffer(offer) {
    const blocked = !view.connected || view.pending.has('accept') || view.pending.has('decline');
    $('offer-queue').textContent = offer.callback ? `${offer.queue} (callback: we call the customer)` : offer.queue;
    $('btn-accept').disabled = blocked;
    $('btn-decline').disabled = blocked;
    $('mute-ring').checked = isMuted();
  }

  function renderCall(call) {
    $('call-queue').textContent = call.outbound ? `${call.outbound.campaign} (outbound)` : call.queue;
    $('btn-hangup').disabled = !view.connected || view.pending.has('hang_up');
    const c = call.controls || {};
    const usable = view.connected && Boolean(c.ready);
    const hold = $('btn-hold');
    hold.textContent = c.on_hold ? 'Resume' : 'Hold';
    hold.setAttribute('aria-label', c.on_hold ? 'Take the caller off hold' : 'Hold the caller');
    hold.setAttribute('aria-pressed', String(Boolean(c.on_hold)));
    hold.disabled = !usable || view.pending.has('hold');
    const mute = $('btn-mute');
    mute.textContent = c.muted ? 'Unmute' : 'Mute';
    mute.setAttribute('aria-label', c.muted ? 'Unmute my microphone' : 'Mute my microphone');
    mute.setAttribute('aria-pressed', String(Boolean(c.muted)));
    mute.disabled = !usable || view.pending.has('mute');
    const flags = [c.on_hold ? 'Caller on hold (hearing music)' : '', c.muted ? 'You are muted' : '',
      c.transferred_from ? `Transferred from ${c.transferred_from}` : ''].filter(Boolean);
    $('call-flags').textContent = flags.join(' · ');
    renderTransfer(call, c, usable);
    $('call-supervisors').textContent = (c.supervisors || [])
      .map((v) => `${v.name} is ${MODE_WORDS[v.mode] || 'joining'}`).join(' · ');
    $('call-notes').replaceChildren(...(c.notes || []).map((n) => el('li', null, n.text)));
    $('btn-save-note').disabled = !view.connected || view.pending.has('add_note');
    if (view.targetsSid !== call.call_sid && view.connected) loadTargets(call.call_sid);
  }

  function renderTransfer(call, c, usable) {
    const t = c.transfer;
    const busy = view.pending.has('transfer') || Boolean(t) || Boolean(call.outbound);
    $('btn-warm-transfer').disabled = !usable || busy || !$('transfer-target').value.startsWith('agent:');
    $('btn-cold-transfer').disabled = !usable || busy || !$('transfer-target').value;
    $('btn-bring-supervisor').disabled = !usable || !$('supervisor-target').value || view.pending.has('bring_in_supervisor');
    $('transfer-status').hidden = !t;
    $('transfer-status').textContent = t
      ? `${humanize(t.kind)} transfer to ${t.agent || t.queue}: ${t.state === 'connected' ? 'they are on the call' : humanize(t.state)}`
      : '';
    const warm = Boolean(t) && t.kind === 'warm';
    $('btn-complete-transfer').hidden = !warm;
    $('btn-complete-transfer').disabled = !warm || t.state !== 'connected' || view.pending.has('complete_transfer');
    $('btn-cancel-transfer').hidden = !warm;
  }

  // Who the call can go to: asked once per call (and again on focus), not pushed with every snapshot.
  function loadTargets(callSid) {
    view.targetsSid = callSid;
    socket.timeout(ACTION_TIMEOUT_MS).emit('transfer_targets', {}, (err, reply) => {
      if (err || !reply || !reply.ok) return;
      const options = [['', 'Choose…']]
        .concat((reply.queues || []).map((q) => [`queue:${q}`, `Queue: ${q}`]))
        .concat((reply.agents || []).map((a) => [`agent:${a.id}`, `Agent: ${a.name}${a.free ? '' : ' (busy)'}`]));
      fillSelect($('transfer-target'), options);
      fillSelect($('supervisor-target'), [['', 'Choose…']].concat((reply.supervisors || []).map((v) => [String(v.id), v.name])));
      render();
    });
  }

  function fillSelect(select, options) {
    const keep = select.value;
    select.replaceChildren(...options.map(([value, text]) => {
      const option = el('option', null, text);
      option.value = value;
      return option;
    }));
    if (options.some(([value]) => value === keep)) select.value = keep;
  }

  function renderWrapup(s) {
    const { call } = s;
    if (view.wrapupSid !== call.call_sid) resetWrapupForm(call.call_sid);
    syncOptions($('disposition'), s.dispositions, 'Choose…');
    const outbound = call.outbound;
    $('callback-fields').hidden = $('disposition').value !== 'callback';
    $('callback-zone').textContent = (outbound ? outbound.zone : call.callback_zone) || 'unknown';
    // campaign callbacks belong to me or the campaign's team; inbound ones to me or the call's queue
    const shared = $('callback-owner-shared');
    shared.value = outbound ? 'team' : 'queue';
    shared.textContent = outbound ? 'Anyone on the campaign' : `Anyone in ${call.queue || 'the queue'}`;
    $('complaint-fields').hidden = !$('complaint-mark').checked;
    $('wrapup-duration').textContent =
      call.duration === null || call.duration === undefined ? '' : `Call lasted ${formatDuration(call.duration)}`;
    $('btn-finish').disabled = !view.connected || view.pending.has('wrap_up');
  }

  function renderManualDial(campaigns) {
    const select = $('manual-campaign');
    const chosen = select.value;
    select.replaceChildren(...campaigns.map((c) => {
      const option = el('option', null, c.name);
      option.value = String(c.id);
      return option;
    }));
    if (campaigns.some((c) => String(c.id) === chosen)) select.value = chosen;
    $('btn-manual-dial').disabled = !view.connected || view.pending.has('manual_dial');
  }

  function renderPreview(preview) {
    const blocked = !view.connected || view.pending.has('preview_dial') || view.pending.has('preview_skip');
    $('preview-campaign').textContent = preview.campaign;
    const lead = preview.lead;
    $('preview-lead').textContent =
      `${lead.name || 'Lead'} · ${lead.phone}${lead.state ? ` · ${lead.state}` : ''} · attempt ${lead.attempt}`;
    const questions = (preview.script && preview.script.questions) || [];
    $('preview-questions').replaceChildren(...questions.map((q) => el('li', null, q.text || humanize(q.key))));
    $('btn-preview-dial').disabled = blocked;
    $('btn-preview-skip').disabled = blocked;
  }

  /* The screening script of a campaign call: built once per call, so answers being typed survive pushes. */
  function renderScript(call) {
    const panel = $('script');
    panel.hidden = !call;
    if (!call) {
      view.scriptSid = null;
      return;
    }
    if (view.scriptSid === call.call_sid) return;
    view.scriptSid = call.call_sid;
    const { campaign, lead, script } = call.outbound;
    $('script-campaign').textContent = campaign;
    $('script-lead').textContent =
      `${lead.name || 'Lead'} · ${lead.phone}${lead.state ? ` · ${lead.state}` : ''} · attempt ${lead.attempt}`;
    const questions = (script && script.questions) || [];
    $('script-questions').replaceChildren(...questions.map((q) => questionField(q, (lead.answers || {})[q.key])));
  }

  function questionField(question, answer) {
    const wrap = el('div', 'script-question');
    const id = `answer-${String(question.key).replace(/[^A-Za-z0-9_-]/g, '-')}`;
    const label = el('label', null, question.text || humanize(question.key));
    label.htmlFor = id;
    let input;
    if (question.type === 'yes_no' || question.type === 'choice') {
      input = el('select');
      const options = question.type === 'yes_no' ? ['yes', 'no'] : (question.options || []);
      input.append(el('option', null, 'Choose…'));
      input.firstChild.value = '';
      options.forEach((option) => {
        const item = el('option', null, humanize(String(option)));
        item.value = String(option);
        input.append(item);
      });
    } else {
      input = el('input');
      input.type = question.type === 'number' ? 'number' : 'text';
    }
    input.id = id;
    input.name = question.key;
    input.dataset.kind = question.type || 'text';
    if (answer !== undefined && answer !== null) input.value = String(answer);
    wrap.append(label, input);
    return wrap;
  }

  function scriptAnswers() {
    const answers = {};
    document.querySelectorAll('#script-questions [name]').forEach((input) => {
      if (input.value === '') return;
      answers[input.name] = input.dataset.kind === 'number' ? Number(input.value) : input.value;
    });
    return answers;
  }

  function resetWrapupForm(callSid) {
    view.wrapupSid = callSid;
    $('disposition').value = '';
    $('disposition').removeAttribute('aria-invalid');
    $('callback-at').value = '';
    $('callback-owner').value = 'me';
    $('note').value = '';
    $('complaint-mark').checked = false;
    $('complaint-text').value = '';
  }

  function renderCustomer(customer) {
    const card = $('customer');
    card.hidden = !customer;
    if (!customer) return;
    $('customer-name').textContent = customer.name || 'Unknown caller';
    const tier = $('customer-tier');
    const tierName = customer.tier || 'standard';
    tier.textContent = `${humanize(tierName)} tier`;
    tier.className = `tier tier-${tierName}`;
    tier.dataset.tier = tierName;
    tier.title = `Value tier: ${humanize(tierName)}`;
    $('customer-unknown').hidden = customer.known !== false;
    $('customer-stage').textContent = humanize(customer.stage) || '—';
    $('customer-phones').textContent = (customer.phones || []).join(', ') || '—';
    $('customer-owner').textContent = customer.owner || 'Unassigned';
    const unknown = customer.known === false && customer.id !== null && customer.id !== undefined;
    const panel = $('unknown-caller');
    if (panel.dataset.customer !== String(customer.id)) {
      panel.dataset.customer = String(customer.id);
      $('customer-results').replaceChildren();
    }
    panel.hidden = !unknown;
    renderValue(customer.value);
    renderOpenItems(customer.complaints || [], customer.callbacks || []);
    renderTimeline(customer.timeline || []);
  }

  function formatAge(seconds) {
    if (seconds < 60) return 'under a minute';
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
    if (seconds < 2 * 86400) return `${Math.floor(seconds / 3600)} h`;
    return `${Math.floor(seconds / 86400)} days`;
  }

  // What is still open for the customer: complaints (with their age) and callbacks they are waiting for.
  function renderOpenItems(complaints, callbacks) {
    $('customer-open').hidden = complaints.length === 0 && callbacks.length === 0;
    $('customer-complaints-block').hidden = complaints.length === 0;
    $('customer-callbacks-block').hidden = callbacks.length === 0;
    $('customer-complaints').replaceChildren(...complaints.map((c) => {
      const item = el('li', 'open-item open-complaint');
      item.dataset.complaint = String(c.id);
      item.append(el('span', 'open-summary', c.summary));
      const by = c.opened_by ? ` by ${c.opened_by}` : '';
      item.append(el('span', 'open-meta', `open for ${formatAge(c.age_s)}${by} (since ${formatDate(c.opened_at)})`));
      return item;
    }));
    $('customer-callbacks').replaceChildren(...callbacks.map((c) => {
      const item = el('li', 'open-item open-callback');
      item.dataset.kind = c.kind;
      const where = c.where ? ` — ${c.where}` : '';
      item.append(el('span', 'open-summary', `${CALLBACK_KINDS[c.kind] || humanize(c.kind)}${where}`));
      const when = c.at ? `due ${formatDate(c.at)}` : `waiting since ${formatDate(c.since)}`;
      item.append(el('span', 'open-meta', `${when} · ${c.phone || ''} · by ${c.owner}`));
      return item;
    }));
  }

  function formatMoney(amount, currency) {
    if (amount === null || amount === undefined) return '—';
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency || 'USD' }).format(amount);
    } catch (err) { // an unusual currency code: still show the figure
      return `${amount.toFixed(2)} ${currency}`;
    }
  }

  // The CRM's last recompute: lifetime value, how likely the customer still buys, and why they may churn.
  function renderValue(value) {
    $('customer-value').hidden = !value;
    if (!value) return;
    const money = (amount) => formatMoney(amount, value.currency);
    $('customer-clv').textContent = money(value.lifetime_value);
    $('customer-alive').textContent = value.p_alive === null || value.p_alive === undefined
      ? 'not yet scored' : `${Math.round(value.p_alive * 100)}%`;
    $('customer-orders').textContent = String(value.orders || 0);
    $('customer-last-purchase').textContent = value.last_purchase_at ? formatDate(value.last_purchase_at) : 'never';
    $('customer-revenue').textContent = money(value.revenue_12m);
    $('customer-value-to-date').textContent = money(value.value_to_date);
    const churn = $('customer-churn');
    churn.hidden = !value.churn_risk;
    churn.textContent = value.churn_risk ? `Churn risk: ${value.churn_reason || 'flagged by the CRM'}` : '';
  }

  function renderTimeline(entries) {
    const newestFirst = entries.slice().sort((x, y) => (parseTime(y.at) || 0) - (parseTime(x.at) || 0));
    $('timeline').replaceChildren(...newestFirst.map(timelineItem));
    $('timeline-empty').hidden = newestFirst.length > 0;
  }

  function timelineItem(entry) {
    const item = el('li', 'timeline-item');
    item.dataset.kind = entry.kind;
    const head = el('div', 'timeline-head');
    head.append(el('span', 'timeline-kind', TIMELINE_KINDS[entry.kind] || humanize(entry.kind)));
    const when = el('time', null, formatDate(entry.at));
    when.dateTime = entry.at || '';
    head.append(when);
    item.append(head);
    if (entry.summary) item.append(el('p', 'timeline-summary', entry.summary));
    const meta = [
      entry.agent ? `Agent: ${entry.agent}` : '',
      entry.duration !== null && entry.duration !== undefined ? `Duration: ${formatDuration(entry.duration)}` : '',
      entry.disposition ? `Disposition: ${humanize(entry.disposition)}` : '',
    ].filter(Boolean);
    if (meta.length) item.append(el('p', 'timeline-meta', meta.join(' · ')));
    if (entry.note) item.append(el('p', 'timeline-note', entry.note));
    return item;
  }

  // Runs every second: everything that moves with the clock, computed from the snapshot and the server skew.
  function tick() {
    const s = view.snapshot;
    if (!s) return;
    $('time-in-state').textContent = formatDuration(secondsSince(s.agent.since));
    if (s.offer) $('offer-countdown').textContent = String(secondsUntil(s.offer.expires_at));
    if (s.call && s.agent.work === 'on_call') {
      $('call-timer').textContent = s.call.connected_at
        ? `Connected ${formatDuration(secondsSince(s.call.connected_at))}`
        : 'Connecting…';
    }
    if (s.call && s.agent.work === 'wrap_up') {
      $('wrapup-countdown').textContent = s.call.wrap_up_until
        ? `Wrap-up ends in ${formatDuration(secondsUntil(s.call.wrap_up_until))}`
        : 'No time limit';
    }
  }

  /* ---------- ring (WebAudio, no files) ---------- */

  // localStorage may throw (privacy modes); the ring then stays on, the safe default for a contact centre.
  function isMuted() {
    try { return localStorage.getItem(MUTE_KEY) === '1'; } catch (e) { return false; }
  }

  function setMuted(muted) {
    try { localStorage.setItem(MUTE_KEY, muted ? '1' : '0'); } catch (e) { /* not remembered */ }
  }

  function createRinger() {
    let ctx = null;
    let timer = null;

    function context() {
      const AudioCtx = window.AudioContext || window.webkitAudioContext;
      if (!AudioCtx) return null;
      if (!ctx) ctx = new AudioCtx();
      if (ctx.state === 'suspended') ctx.resume().catch(() => {});
      return ctx;
    }

    function tone(ac, start, freq) {
      const osc = ac.createOscillator();
      const gain = ac.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.25, start + 0.02);
      gain.gain.setValueAtTime(0.25, start + 0.18);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.25);
      osc.connect(gain).connect(ac.destination);
      osc.start(start);
      osc.stop(start + 0.3);
    }

    function beep() {
      const ac = context();
      // Browsers keep audio suspended until the user interacts with the page; say so instead of failing silently.
      $('ring-hint').hidden = !ac || ac.state === 'running';
      if (!ac || ac.state !== 'running') return;
      tone(ac, ac.currentTime, 880);
      tone(ac, ac.currentTime + 0.35, 880);
    }

    return {
      start() {
        if (timer) return;
        beep();
        timer = setInterval(beep, RING_EVERY_MS);
      },
      stop() {
        clearInterval(timer);
        timer = null;
        $('ring-hint').hidden = true;
      },
      unlock() {
        context();
      },
    };
  }

  const ringer = createRinger();

  function updateRing(s) {
    if (s.offer && view.connected && !isMuted()) ringer.start();
    else ringer.stop();
  }

  /* ---------- actions ---------- */

  function act(event, payload) {
    if (!socket || !view.connected) {
      setError('Not connected to the server. Try again once the connection is back.');
      return;
    }
    view.pending.add(event);
    render();
    socket.timeout(ACTION_TIMEOUT_MS).emit(event, payload, (err, reply) => {
      view.pending.delete(event);
      if (err) setError('The server did not answer in time. Please try again.');
      else if (!reply || !reply.ok) setError((reply && reply.error) || 'That did not work. Please try again.');
      else onActionDone(event);
      render();
    });
  }

  function onActionDone(event) {
    setError();
    if (event === 'wrap_up') resetWrapupForm(null);
    if (event === 'add_note') $('call-note').value = '';
    if (event === 'manual_dial') $('manual-number').value = '';
  }

  /* ---------- in-call controls ---------- */

  function currentControls() {
    const s = view.snapshot;
    return (s && s.call && s.call.controls) || {};
  }

  function transfer(kind) {
    const target = $('transfer-target').value;
    const payload = { call_sid: currentSid('call'), kind };
    if (target.startsWith('agent:')) payload.agent_id = Number(target.slice(6));
    else if (target.startsWith('queue:')) payload.queue = target.slice(6);
    act('transfer', payload);
  }

  function saveNote(event) {
    event.preventDefault();
    const text = $('call-note').value.trim();
    if (!text) {
      setError('Write the note first.');
      $('call-note').focus();
      return;
    }
    act('add_note', { call_sid: currentSid('call'), text });
  }

  /* ---------- unknown caller: search, create, merge (HTTP with the page's CSRF token) ---------- */

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : '';
  }

  async function postJson(url, body) {
    const response = await fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
      body: JSON.stringify(body),
    });
    const reply = await response.json().catch(() => ({}));
    if (!response.ok || !reply.ok) throw new Error(reply.error || 'That did not work. Please try again.');
    return reply;
  }

  function callerSid() {
    const s = view.snapshot;
    if (!s) return null;
    return (s.call && s.call.call_sid) || (s.offer && s.offer.call_sid) || null;
  }

  async function searchCustomers(event) {
    event.preventDefault();
    const query = $('customer-search').value.trim();
    if (query.length < 2) {
      setError('Type at least two characters to search.');
      return;
    }
    try {
      const response = await fetch(`/console/customers?q=${encodeURIComponent(query)}`, { credentials: 'same-origin' });
      const reply = await response.json();
      if (!response.ok) throw new Error(reply.error || 'The search failed.');
      setError();
      const items = reply.customers.map((c) => {
        const item = el('li', 'customer-result');
        item.append(el('span', null, `${c.name} · ${(c.phones || []).join(', ')}${c.email ? ` · ${c.email}` : ''}`));
        const merge = el('button', 'btn', 'Merge into this customer');
        merge.type = 'button';
        merge.setAttribute('aria-label', `Merge the caller into ${c.name}`);
        merge.addEventListener('click', () => mergeInto(c.id));
        item.append(merge);
        return item;
      });
      $('customer-results').replaceChildren(...(items.length ? items : [el('li', 'muted', 'No customer matches.')]));
    } catch (e) {
      setError(e.message);
    }
  }

  async function mergeInto(customerId) {
    try {
      await postJson(`/console/calls/${encodeURIComponent(callerSid())}/customer/merge`, { customer_id: customerId });
      setError();
      $('customer-results').replaceChildren();
    } catch (e) {
      setError(e.message);
    }
  }

  async function createCustomer(event) {
    event.preventDefault();
    const name = $('new-customer-name').value.trim();
    if (!name) {
      setError("Give the caller's name.");
      $('new-customer-name').focus();
      return;
    }
    try {
      await postJson(`/console/calls/${encodeURIComponent(callerSid())}/customer`,
        { name, email: $('new-customer-email').value.trim() });
      setError();
      $('new-customer-name').value = '';
      $('new-customer-email').value = '';
    } catch (e) {
      setError(e.message);
    }
  }

  function currentSid(kind) {
    const s = view.snapshot;
    const holder = s && s[kind];
    return holder ? holder.call_sid : null;
  }

  function currentLead() {
    const s = view.snapshot;
    return s && s.preview ? s.preview.lead_id : null;
  }

  function setPresence(presence, reason) {
    act('set_presence', { presence, reason: reason || null });
  }

  function takeBreak() {
    const select = $('break-reason');
    delete select.dataset.touched;
    setPresence('break', select.value);
  }

  function submitWrapup(event) {
    event.preventDefault();
    const sid = currentSid('call');
    const disposition = $('disposition').value;
    if (!disposition) {
      $('disposition').setAttribute('aria-invalid', 'true');
      $('disposition').focus();
      setError('Choose a disposition before finishing wrap-up.');
      return;
    }
    $('disposition').removeAttribute('aria-invalid');
    const payload = { call_sid: sid, disposition, note: $('note').value.trim(), answers: scriptAnswers() };
    if (!$('callback-fields').hidden) payload.callback = { at: $('callback-at').value, owner: $('callback-owner').value };
    if ($('complaint-mark').checked) payload.complaint = { summary: $('complaint-text').value.trim() };
    if (sid) act('wrap_up', payload);
  }

  function clickIfUsable(id) {
    const button = $(id);
    if (!button || button.disabled || button.closest('[hidden]')) return false;
    button.click();
    return true;
  }

  function isTyping(target) {
    return target instanceof Element &&
      Boolean(target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]'));
  }

  function onKeydown(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || isTyping(event.target)) return;
    const key = (event.key || '').toLowerCase();
    if (key === 'n' && !$('call').hidden) {
      event.preventDefault();
      $('call-note').focus();
      return;
    }
    if (/^[1-9]$/.test(key) && !$('wrapup').hidden) {
      const option = $('disposition').options[Number(key)]; // option 0 is "Choose…"
      if (option) {
        event.preventDefault();
        $('disposition').value = option.value;
        $('disposition').dispatchEvent(new Event('change'));
      }
      return;
    }
    const id = SHORTCUTS[key];
    if (id && clickIfUsable(id)) event.preventDefault();
  }

  function bindControls() {
    $('btn-available').addEventListener('click', () => setPresence('available'));
    $('btn-offline').addEventListener('click', () => setPresence('offline'));
    $('btn-break').addEventListener('click', takeBreak);
    $('break-reason').addEventListener('change', () => {
      $('break-reason').dataset.touched = '1';
      render();
    });
    $('btn-accept').addEventListener('click', () => act('accept', { call_sid: currentSid('offer') }));
    $('btn-decline').addEventListener('click', () => act('decline', { call_sid: currentSid('offer') }));
    $('btn-hangup').addEventListener('click', () => act('hang_up', { call_sid: currentSid('call') }));
    $('btn-hold').addEventListener('click', () => act('hold', { call_sid: currentSid('call'), hold: !currentControls().on_hold }));
    $('btn-mute').addEventListener('click', () => act('mute', { call_sid: currentSid('call'), muted: !currentControls().muted }));
    $('btn-warm-transfer').addEventListener('click', () => transfer('warm'));
    $('btn-cold-transfer').addEventListener('click', () => transfer('cold'));
    $('btn-complete-transfer').addEventListener('click', () => act('complete_transfer', { call_sid: currentSid('call') }));
    $('btn-cancel-transfer').addEventListener('click', () => act('cancel_transfer', { call_sid: currentSid('call') }));
    $('btn-bring-supervisor').addEventListener('click', () => act('bring_in_supervisor',
      { call_sid: currentSid('call'), supervisor_id: Number($('supervisor-target').value) }));
    $('transfer-target').addEventListener('change', render);
    $('supervisor-target').addEventListener('change', render);
    $('transfer-target').addEventListener('focus', () => { if (view.connected) loadTargets(currentSid('call')); });
    $('call-note-form').addEventListener('submit', saveNote);
    $('customer-search-form').addEventListener('submit', searchCustomers);
    $('customer-create-form').addEventListener('submit', createCustomer);
    $('btn-preview-dial').addEventListener('click', () => act('preview_dial', { lead_id: currentLead() }));
    $('btn-preview-skip').addEventListener('click', () => act('preview_skip', { lead_id: currentLead() }));
    $('manual-dial-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const number = $('manual-number').value.trim();
      if (!number) { setError('Type the number to call.'); render(); return; }
      act('manual_dial', { campaign_id: Number($('manual-campaign').value), number });
    });
    $('wrapup-form').addEventListener('submit', submitWrapup);
    $('complaint-mark').addEventListener('change', render);
    $('disposition').addEventListener('change', () => {
      $('disposition').removeAttribute('aria-invalid');
      if ($('disposition').value === 'complaint') $('complaint-mark').checked = true; // it opens one anyway
      render(); // a callback needs its date and time
    });
    $('mute-ring').checked = isMuted();
    $('mute-ring').addEventListener('change', () => {
      setMuted($('mute-ring').checked);
      render();
    });
    document.addEventListener('keydown', onKeydown);
    // Any interaction counts as the user gesture browsers require before audio may play.
    document.addEventListener('pointerdown', () => ringer.unlock());
    document.addEventListener('keydown', () => ringer.unlock());
  }

  /* ---------- connection ---------- */

  function setConnection(state, text) {
    const node = $('connection');
    node.dataset.state = state;
    node.textContent = text;
  }

  function onState(snapshot) {
    if (!snapshot || !snapshot.agent) return;
    const serverTime = parseTime(snapshot.server_time);
    view.skewMs = Number.isNaN(serverTime) ? 0 : serverTime - Date.now();
    view.snapshot = snapshot;
    render();
  }

  function onConnect() {
    view.connected = true;
    setConnection('connected', 'Connected');
    setError();
    socket.emit('refresh', {}, () => {});
    render();
  }

  function onDisconnect(reason) {
    view.connected = false;
    view.pending.clear();
    setConnection('reconnecting', 'Reconnecting…');
    render();
    // The client only reconnects by itself after transport failures, not when the server dropped us.
    if (reason === 'io server disconnect') setTimeout(() => socket.connect(), RETRY_AFTER_REFUSAL_MS);
  }

  function onConnectError() {
    view.connected = false;
    if (socket.active) {
      setConnection('reconnecting', 'Reconnecting…');
    } else {
      setConnection('disconnected', 'Disconnected');
      setError('The server refused the live connection; your session may have ended. Reload the page to log in again.');
      setTimeout(() => socket.connect(), RETRY_AFTER_REFUSAL_MS);
    }
    render();
  }

  function start() {
    bindControls();
    if (typeof window.io !== 'function') {
      setConnection('disconnected', 'Disconnected');
      setError('Live updates are unavailable: the Socket.IO client did not load.');
      return;
    }
    socket = window.io('/agent', { transports: ['websocket'] });
    socket.on('connect', onConnect);
    socket.on('disconnect', onDisconnect);
    socket.on('connect_error', onConnectError);
    socket.on('state', onState);
    setInterval(tick, 1000);
    // the server logs off an agent whose console stops beating (closed tab, dead laptop)
    setInterval(() => { if (view.connected) socket.emit('heartbeat', {}, () => {}); }, HEARTBEAT_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
