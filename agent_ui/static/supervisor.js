/* Switchboard wallboard: renders each `board` snapshot pushed on /supervisor; the client never polls. */
'use strict';

(() => {
  const RETRY_AFTER_REFUSAL_MS = 10000;
  const LONG_WAIT_S = 60; // a queue tile turns amber when its oldest caller has waited this long
  const SERVICE_LEVEL_GOAL = 0.8; // until the board says otherwise (hub/metrics.py SERVICE_LEVEL_GOAL)
  const CHART_COLORS = { answered: '#2e7d32', abandoned: '#c62828', voicemail: '#8d99a6', level: '#1565c0', trend: '#b26a00' };
  const PRESENCE_WORDS = { available: 'Available', break: 'Break', offline: 'Offline' };
  const WORK_WORDS = { idle: 'Idle', offered: 'Offered', on_call: 'On call', wrap_up: 'Wrap-up' };
  const CALL_WORDS = { waiting: 'Waiting', offered: 'Offered', connecting: 'Connecting', connected: 'Connected' };
  // the compliance gate's reason codes (docs/compliance.md), in a supervisor's words
  const REASON_WORDS = {
    campaign_not_running: 'campaign not running',
    registry_stale: 'registry extract too old',
    unknown_zone: 'time zone unknown',
    dnc_internal: 'opted out',
    dnc_registry: 'on the DNC registry',
    dnc_complaint: 'complained',
    final_outcome: 'finished',
    out_of_attempts: 'out of attempts',
    outside_schedule: 'outside the campaign hours',
    outside_window: 'outside their calling hours',
    person_cap: 'called enough today',
    retry_delay: 'waiting to retry',
    callback_pending: 'callback booked',
  };

  const $ = (id) => document.getElementById(id);
  const view = { board: null, skewMs: 0, receivedServerMs: 0, connected: false, alertsKey: null, crmKey: null,
    openMenus: new Set() };
  const charts = { calls: null, abandon: null };
  let socket = null;
  const { parseTime, formatDuration, el, humanize } = window.Switchboard;

  /* ---------- time ---------- */

  function serverNow() {
    return Date.now() + view.skewMs;
  }

  function secondsSince(iso) {
    const t = parseTime(iso);
    return Number.isNaN(t) ? 0 : Math.max(0, Math.floor((serverNow() - t) / 1000));
  }

  /* ---------- DOM helpers (text only) ---------- */

  function formatServiceLevel(level) {
    return typeof level === 'number' ? `${Math.round(level * 100)}%` : '—';
  }

  // A cell whose text the ticker keeps current from an ISO timestamp.
  function sinceCell(iso) {
    const cell = el('td', 'clock', formatDuration(secondsSince(iso)));
    cell.dataset.since = iso || '';
    return cell;
  }

  function emptyRow(columns, text) {
    const row = el('tr', 'empty-row');
    const cell = el('td', 'muted', text);
    cell.colSpan = columns;
    row.append(cell);
    return row;
  }

  /* ---------- queues ---------- */

  function queueTile(queue) {
    const tile = el('article', 'queue-tile');
    tile.dataset.queue = queue.name;
    const titleId = `queue-${String(queue.name).replace(/[^A-Za-z0-9_-]/g, '-')}`;
    tile.setAttribute('aria-labelledby', titleId);
    const title = el('h3', null, humanize(queue.name));
    title.id = titleId;

    const waiting = el('p', 'queue-waiting');
    waiting.append(el('span', 'queue-waiting-count', queue.waiting ?? 0), el('span', 'queue-waiting-label', 'waiting'));

    const longest = el('p', 'queue-longest');
    const longestValue = el('span', 'clock', formatDuration(queue.longest_wait_s));
    // Between snapshots the oldest caller is still waiting (any change triggers a push), so this can tick.
    if (queue.waiting > 0) longestValue.dataset.waitBase = String(queue.longest_wait_s || 0);
    longest.append('Longest wait ', longestValue);

    const level = queue.service_level_today;
    const goal = typeof queue.service_level_goal === 'number' ? queue.service_level_goal : SERVICE_LEVEL_GOAL;
    tile.classList.toggle('is-warning', queue.waiting > 0 && (queue.longest_wait_s || 0) >= LONG_WAIT_S);
    tile.classList.toggle('is-below-target', typeof level === 'number' && level < goal);

    tile.append(title, waiting, longest, queueFacts(queue));
    return tile;
  }

  function formatSeconds(seconds) {
    return typeof seconds === 'number' ? formatDuration(Math.round(seconds)) : '—';
  }

  // What Erlang was told, so a supervisor can judge the forecast (docs/wallboard.md).
  function forecastInputs(forecast) {
    if (!forecast || !forecast.model) return 'No forecast until a call has been handled today.';
    const model = forecast.model === 'erlang_a' ? `Erlang A (patience ${Math.round(forecast.patience_s)} s)` : 'Erlang C';
    return `${model}: ${forecast.calls_expected} calls expected in 15 min, AHT ${Math.round(forecast.aht_s)} s, ` +
      `${forecast.agents} agents staffed, target ${forecast.target_s} s`;
  }

  function queueFacts(queue) {
    const today = queue.today || {};
    const forecast = queue.forecast || {};
    const facts = [
      ['available', 'Available', queue.agents_available],
      ['on_call', 'On call', queue.agents_on_call],
      ['wrap_up', 'Wrap-up', queue.agents_wrap_up],
      ['break', 'Break', queue.agents_break],
      ['offered', 'Offered', today.offered],
      ['answered', 'Answered', queue.answered_today],
      ['abandoned', 'Abandoned', queue.abandoned_today],
      ['voicemail', 'Voicemail', (queue.overflowed_today ?? 0) + (queue.after_hours_today ?? 0)],
      ['service_level', `Service level (${queue.target_s ?? 20} s)`, formatServiceLevel(queue.service_level_today)],
      ['abandon_rate', 'Abandon rate', formatServiceLevel(today.abandon_rate)],
      ['asa', 'ASA', formatSeconds(today.asa_s)],
      ['aht', 'AHT', formatSeconds(today.aht_s)],
      ['forecast', 'Next 15 min (forecast)', formatServiceLevel(forecast.service_level), forecastInputs(forecast)],
    ];
    const list = el('dl', 'queue-facts');
    facts.forEach(([key, label, value, title]) => {
      const pair = el('div');
      pair.dataset.fact = key;
      if (title) pair.title = title;
      pair.append(el('dt', null, label), el('dd', null, value ?? 0));
      list.append(pair);
    });
    return list;
  }

  function renderQueues(queues) {
    const container = $('queues');
    if (!queues.length) {
      container.replaceChildren(el('p', 'muted', 'No queues configured.'));
      return;
    }
    container.replaceChildren(...queues.map(queueTile));
  }

  /* ---------- agents ---------- */

  function presenceText(agent) {
    const word = PRESENCE_WORDS[agent.presence] || humanize(agent.presence);
    return agent.presence === 'break' && agent.break_reason ? `${word} (${humanize(agent.break_reason)})` : word;
  }

  function agentRow(agent) {
    const row = el('tr');
    row.dataset.agentLogin = agent.login;
    row.dataset.presence = agent.presence;
    row.dataset.work = agent.work;
    const name = el('th', 'agent-name', agent.name);
    name.scope = 'row';
    name.append(' ', el('span', 'agent-login', agent.login));
    const presence = el('td', `presence presence-${agent.presence}`, presenceText(agent));
    const work = el('td', `work work-${agent.work}`, WORK_WORDS[agent.work] || humanize(agent.work));
    const customer = el('td', agent.customer_name ? null : 'muted', agent.customer_name || '—');
    if (agent.work === 'on_call' && agent.call_sid) customer.append(monitorControls(agent)); // in-call controls helper
    const calls = el('td', 'num', agent.calls_today ?? 0);
    const aht = el('td', 'num agent-aht', formatSeconds(agent.aht_s));
    row.append(name, presence, work, sinceCell(agent.since), customer, calls, aht, el('td', null));
    row.lastChild.append(agentMenu(agent));
    return row;
  }

  /* ---------- the supervisor's actions (the server checks the role again on every one) ---------- */

  const BREAK_REASONS = ['lunch', 'meeting', 'training', 'personal'];

  function act(event, payload, what) {
    const status = $('action-status');
    status.textContent = `${what}…`;
    socket.timeout(10000).emit(event, payload, (err, reply) => {
      if (err) status.textContent = `${what}: no answer from the server.`;
      else if (!reply || !reply.ok) status.textContent = `${what}: ${(reply && reply.error) || 'failed'}.`;
      else status.textContent = `${what}: done.`;
    });
  }

  // The board is redrawn on every push, so an open menu is remembered and reopened.
  function menu(key, label, items) {
    const details = el('details', 'row-menu');
    details.open = view.openMenus.has(key);
    details.addEventListener('toggle', () => {
      if (details.open) view.openMenus.add(key); else view.openMenus.delete(key);
    });
    const summary = el('summary', 'btn btn-small', 'Change…');
    summary.setAttribute('aria-label', label);
    details.append(summary);
    const group = el('span', 'row-menu-items');
    items.forEach(([word, aria, onClick]) => {
      const button = el('button', 'btn btn-small', word);
      button.type = 'button';
      button.setAttribute('aria-label', aria);
      button.addEventListener('click', () => {
        view.openMenus.delete(key);
        details.open = false;
        onClick();
      });
      group.append(button);
    });
    details.append(group);
    return details;
  }

  function agentMenu(agent) {
    const id = agent.id;
    const items = [];
    if (agent.presence !== 'available') {
      items.push(['Available', `Make ${agent.name} available`,
        () => act('set_agent_presence', { agent_id: id, presence: 'available' }, `${agent.name} available`)]);
    }
    BREAK_REASONS.forEach((reason) => items.push([`Break: ${humanize(reason)}`, `Put ${agent.name} on a ${reason} break`,
      () => act('set_agent_presence', { agent_id: id, presence: 'break', reason }, `${agent.name} on a break`)]));
    if (agent.presence !== 'offline') {
      items.push(['Offline', `Set ${agent.name} offline`,
        () => act('set_agent_presence', { agent_id: id, presence: 'offline' }, `${agent.name} offline`)]);
    }
    items.push(['Log out', `Log ${agent.name} out`, () => act('log_out_agent', { agent_id: id }, `${agent.name} logged out`)]);
    return menu(`agent:${id}`, `Change ${agent.name}'s state`, items);
  }

  const CAMPAIGN_ACTIONS = {
    draft: ['start'], stopped: ['start'], running: ['pause', 'stop'], paused: ['resume', 'stop'],
  };
  const DIAL_MODES = ['preview', 'progressive', 'predictive'];

  function campaignMenu(campaign) {
    const id = campaign.id;
    const items = (CAMPAIGN_ACTIONS[campaign.status] || []).map((action) => [humanize(action),
      `${humanize(action)} ${campaign.name}`,
      () => act('campaign_action', { campaign_id: id, action }, `${campaign.name}: ${action}`)]);
    DIAL_MODES.filter((mode) => mode !== campaign.mode).forEach((mode) => items.push([`Mode: ${humanize(mode)}`,
      `Switch ${campaign.name} to ${mode} mode`,
      () => act('set_campaign_mode', { campaign_id: id, mode }, `${campaign.name}: ${mode} mode`)]));
    return menu(`campaign:${id}`, `Change campaign ${campaign.name}`, items);
  }

  /* ---------- listen / whisper / barge (conference coaching; the server checks the role again) ---------- */

  const MONITOR_MODES = [['listen', 'Listen'], ['whisper', 'Whisper'], ['barge', 'Barge'], ['leave', 'Leave']];

  function monitorControls(agent) {
    const group = el('span', 'monitor-controls');
    group.setAttribute('role', 'group');
    group.setAttribute('aria-label', `Monitor ${agent.name}'s call`);
    const status = el('span', 'monitor-status muted');
    status.setAttribute('role', 'status');
    MONITOR_MODES.forEach(([mode, word]) => {
      const button = el('button', 'btn btn-small', word);
      button.type = 'button';
      button.dataset.mode = mode;
      button.setAttribute('aria-label', `${word} ${mode === 'leave' ? '' : 'on '}${agent.name}'s call`.replace('  ', ' '));
      button.addEventListener('click', () => {
        const event = mode === 'leave' ? 'stop_monitoring' : 'monitor';
        socket.timeout(10000).emit(event, { call_sid: agent.call_sid, mode }, (err, reply) => {
          status.textContent = err ? 'No answer from the server.' : (reply && reply.ok ? '' : (reply && reply.error) || 'Failed.');
        });
      });
      group.append(button);
    });
    group.append(status);
    return group;
  }

  function renderAgents(agents) {
    const body = $('agents').tBodies[0];
    const columns = $('agents').tHead.rows[0].cells.length;
    body.replaceChildren(...(agents.length ? agents.map(agentRow) : [emptyRow(columns, 'No agents.')]));
  }

  /* ---------- calls ---------- */

  function callRow(call) {
    const row = el('tr');
    row.dataset.callSid = call.call_sid;
    row.dataset.state = call.state;
    row.append(
      el('td', null, humanize(call.queue)),
      el('td', null, call.customer_name || 'Unknown caller'),
      el('td', `call-state call-state-${call.state}`, CALL_WORDS[call.state] || humanize(call.state)),
      sinceCell(call.since),
      el('td', 'call-why', call.agent ? `${call.agent}: ${call.reason || ''}` : (call.reason || '')),
    );
    return row;
  }

  function renderCalls(calls) {
    const body = $('calls').tBodies[0];
    body.replaceChildren(...(calls.length ? calls.map(callRow) : [emptyRow(5, 'No calls right now.')]));
  }

  /* ---------- campaigns ---------- */

  function percent(rate) {
    return typeof rate === 'number' ? `${(rate * 100).toFixed(1)}%` : '—';
  }

  function occupancyText(occupancy) {
    if (!occupancy || !occupancy.staffed) return '—';
    return `${percent(occupancy.rate)} (${occupancy.busy} of ${occupancy.staffed})`;
  }

  function campaignRow(campaign) {
    const row = el('tr');
    row.dataset.campaign = campaign.name;
    row.dataset.status = campaign.status;
    const name = el('th', null, campaign.name);
    name.scope = 'row';
    const abandon = campaign.abandon || {};
    const month = abandon.rolling_30_days || {};
    const today = abandon.today || {};
    const limit = typeof abandon.target === 'number' ? abandon.target : 0.03;
    const monthCell = el('td', 'num campaign-abandon-30d', `${percent(month.rate)} (${percent(limit)})`);
    monthCell.classList.toggle('is-below-target', typeof month.rate === 'number' && month.rate > limit * 0.8);
    const leads = campaign.leads || {};
    const reasons = Object.entries(leads.not_dialable_now || {})
      .map(([code, n]) => `${REASON_WORDS[code] || humanize(code)}: ${n}`).join(', ');
    const funnel = campaign.funnel || {};
    row.append(
      name,
      el('td', `campaign-status campaign-status-${campaign.status}`, humanize(campaign.status)),
      el('td', null, humanize(campaign.mode)),
      el('td', 'num', campaign.lines_in_flight ?? 0),
      el('td', 'num', campaign.dials_per_second ?? 0),
      el('td', 'num', `${percent(campaign.answer_rate_today)} / ${percent(campaign.machine_rate_today)}`),
      el('td', 'num', `${percent(today.rate)} of ${today.live ?? 0}`),
      monthCell,
      el('td', 'num campaign-occupancy', occupancyText(campaign.occupancy)),
      el('td', 'num', leads.dialable_now ?? 0),
      el('td', reasons ? 'campaign-why' : 'muted campaign-why', reasons || '—'),
      el('td', 'campaign-funnel',
        `${funnel.leads ?? 0} leads → ${funnel.attempted ?? 0} attempted → ${funnel.contacted ?? 0} contacted → ` +
        `${funnel.qualified ?? 0} qualified → ${funnel.handed_off ?? 0} handed off → ${funnel.won ?? 0} won`),
      el('td', null),
    );
    row.lastChild.append(campaignMenu(campaign));
    return row;
  }

  function renderCampaigns(campaigns) {
    const body = $('campaigns').tBodies[0];
    body.replaceChildren(...(campaigns.length ? campaigns.map(campaignRow) : [emptyRow(13, 'No campaigns running.')]));
  }

  /* ---------- alerts ---------- */

  // Rebuilt only when what it says changes, so a screen reader announces each alert once.
  function renderAlerts(alerts) {
    const key = JSON.stringify(alerts.map((a) => [a.level, a.kind, a.subject, a.message]));
    if (key === view.alertsKey) return;
    view.alertsKey = key;
    const banner = $('alerts');
    banner.dataset.level = alerts.some((a) => a.level === 'breach') ? 'breach' : (alerts.length ? 'warning' : 'none');
    if (!alerts.length) {
      banner.replaceChildren();
      return;
    }
    const list = el('ul', 'alert-list');
    alerts.forEach((alert) => {
      const item = el('li', `alert alert-${alert.level}`);
      item.dataset.kind = alert.kind;
      item.dataset.subject = alert.subject;
      item.append(el('strong', null, alert.level === 'breach' ? 'Breach: ' : 'Warning: '), alert.message);
      list.append(item);
    });
    banner.replaceChildren(list);
  }

  /* ---------- charts (Chart.js, served by the hub) ---------- */

  function intervalLabel(iso) {
    return String(iso || '').slice(11, 16); // HH:MM of the UTC day
  }

  function asPercent(rate) {
    return typeof rate === 'number' ? Math.round(rate * 1000) / 10 : null;
  }

  function makeChart(canvas, type, datasets, scales) {
    return new window.Chart(canvas, {
      type,
      data: { labels: [], datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        plugins: { legend: { position: 'bottom' } },
        scales,
      },
    });
  }

  function createCharts() {
    const ink = getComputedStyle(document.body).color;
    window.Chart.defaults.color = ink;
    const percentAxis = (position) => ({
      position, min: 0, max: 100, ticks: { callback: (v) => `${v}%` }, grid: { drawOnChartArea: position === 'left' },
    });
    charts.calls = makeChart($('calls-chart'), 'bar', [
      { label: 'Answered', data: [], backgroundColor: CHART_COLORS.answered, stack: 'calls', yAxisID: 'calls' },
      { label: 'Abandoned', data: [], backgroundColor: CHART_COLORS.abandoned, stack: 'calls', yAxisID: 'calls' },
      { label: 'Voicemail', data: [], backgroundColor: CHART_COLORS.voicemail, stack: 'calls', yAxisID: 'calls' },
      { type: 'line', label: 'Service level %', data: [], borderColor: CHART_COLORS.level,
        backgroundColor: CHART_COLORS.level, yAxisID: 'level', spanGaps: true, pointRadius: 2 },
    ], {
      x: { stacked: true },
      calls: { position: 'left', stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: 'Calls' } },
      level: percentAxis('right'),
    });
    charts.abandon = makeChart($('abandon-chart'), 'line', [
      { label: 'Abandon rate %', data: [], borderColor: CHART_COLORS.abandoned, backgroundColor: CHART_COLORS.abandoned,
        spanGaps: true, pointRadius: 2 },
      { label: 'So far today %', data: [], borderColor: CHART_COLORS.trend, backgroundColor: CHART_COLORS.trend,
        borderDash: [6, 4], spanGaps: true, pointRadius: 0 },
    ], { y: { ...percentAxis('left'), beginAtZero: true } });
  }

  function renderCharts(day) {
    if (typeof window.Chart !== 'function' || !day) return;
    if (!charts.calls) createCharts();
    const rows = day.intervals || [];
    const labels = rows.map((r) => intervalLabel(r.start));
    const series = [
      rows.map((r) => r.answered), rows.map((r) => r.abandoned), rows.map((r) => r.voicemail),
      rows.map((r) => asPercent(r.service_level)),
    ];
    charts.calls.data.labels = labels;
    series.forEach((data, i) => { charts.calls.data.datasets[i].data = data; });
    charts.abandon.data.labels = labels;
    charts.abandon.data.datasets[0].data = rows.map((r) => asPercent(r.abandon_rate));
    charts.abandon.data.datasets[1].data = rows.map((r) => asPercent(r.abandon_rate_so_far));
    charts.calls.update('none');
    charts.abandon.update('none');
    const sum = (key) => rows.reduce((total, r) => total + (r[key] || 0), 0);
    const offered = sum('offered');
    const inTarget = view.board.queues.reduce((total, q) => total + ((q.today || {}).answered_in_target || 0), 0);
    $('calls-chart').setAttribute('aria-label',
      `Calls per 15 minutes today: ${offered} offered, ${sum('answered')} answered, ${sum('abandoned')} abandoned; ` +
      `service level ${offered ? Math.round((inTarget / offered) * 100) : '—'}%`);
    const last = rows.length ? rows[rows.length - 1].abandon_rate_so_far : null;
    $('abandon-chart').setAttribute('aria-label', `Abandon rate so far today: ${formatServiceLevel(last)}`);
  }

  /* ---------- the CRM panel (crm/insights.py; refreshed on the server when orders or stages change) ---------- */

  const TIER_WORDS = { gold: 'Gold', silver: 'Silver', standard: 'Standard' };
  const STAGE_COLORS = {
    prospect: '#8d99a6', first_time_buyer: '#64b5f6', repeat_buyer: '#1e88e5', loyal: '#2e7d32',
    advocate: '#7b1fa2', lapsed: '#b26a00', churned: '#c62828',
  };
  const crmCharts = { pareto: null, stages: null, cohorts: null };

  // Money comes as an exact decimal string ("1234.50") in the CRM's one currency.
  function money(value, currency) {
    try {
      const whole = { style: 'currency', currency, minimumFractionDigits: 0, maximumFractionDigits: 0 };
      return new Intl.NumberFormat(undefined, whole).format(Number(value));
    } catch (err) {
      return `${value} ${currency || ''}`.trim();
    }
  }

  function tierRow(tier, currency) {
    const row = el('tr');
    row.dataset.tier = tier.tier;
    const name = el('th');
    name.scope = 'row';
    name.append(el('span', `tier tier-${tier.tier}`, TIER_WORDS[tier.tier] || humanize(tier.tier)));
    row.append(name, el('td', 'num', tier.customers), el('td', 'num', tier.buyers),
      el('td', 'num crm-revenue', money(tier.revenue, currency)),
      el('td', 'num crm-share', percent(tier.revenue_share)));
    return row;
  }

  function renderTierTable(crm) {
    const tiers = crm.tiers || [];
    $('crm-tiers').tBodies[0].replaceChildren(...(tiers.length ? tiers.map((t) => tierRow(t, crm.currency))
      : [emptyRow(5, 'No customers yet.')]));
    const pareto = crm.pareto || {};
    $('crm-headline').textContent = typeof pareto.top_20_percent_share === 'number'
      ? `${money(crm.revenue_12m, crm.currency)} from ${pareto.buyers} buying customers; the top 20% of them brought ` +
        `${percent(pareto.top_20_percent_share)}.`
      : 'No orders in the last 12 months.';
  }

  function createCrmCharts() {
    const percentScale = (title) => ({
      min: 0, max: 100, ticks: { callback: (v) => `${v}%` }, title: { display: true, text: title },
    });
    const base = { animation: false, responsive: true, maintainAspectRatio: false };
    crmCharts.pareto = new window.Chart($('pareto-chart'), {
      type: 'line',
      data: {
        datasets: [
          { label: 'Share of revenue', data: [], borderColor: CHART_COLORS.level, backgroundColor: CHART_COLORS.level,
            pointRadius: 0, fill: false },
          { label: 'Equal shares', data: [{ x: 0, y: 0 }, { x: 100, y: 100 }], borderColor: CHART_COLORS.voicemail,
            borderDash: [6, 4], pointRadius: 0 },
        ],
      },
      options: {
        ...base,
        interaction: { mode: 'nearest', intersect: false, axis: 'x' },
        plugins: { legend: { position: 'bottom' } },
        scales: {
          x: { type: 'linear', ...percentScale('customers, highest revenue first') },
          y: percentScale('revenue'),
        },
      },
    });
    crmCharts.stages = new window.Chart($('stages-chart'), {
      type: 'bar',
      data: { labels: [], datasets: [{ label: 'Customers', data: [], backgroundColor: [] }] },
      options: {
        ...base, plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
    crmCharts.cohorts = new window.Chart($('cohorts-chart'), {
      type: 'line',
      data: { labels: [], datasets: [] },
      options: {
        ...base,
        interaction: { mode: 'index', intersect: false },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
        scales: { y: { ...percentScale('bought again'), beginAtZero: true } },
      },
    });
  }

  // Older cohorts lighter, the newest darkest.
  function cohortColor(index, count) {
    const lightness = count > 1 ? 78 - Math.round((48 * index) / (count - 1)) : 40;
    return `hsl(212, 70%, ${lightness}%)`;
  }

  function renderCrmCharts(crm) {
    if (typeof window.Chart !== 'function') return;
    if (!crmCharts.pareto) createCrmCharts();
    const pareto = crm.pareto || { customer_share: [], revenue_share: [] };
    crmCharts.pareto.data.datasets[0].data = pareto.customer_share.map((share, i) => ({
      x: asPercent(share), y: asPercent(pareto.revenue_share[i]),
    }));
    crmCharts.pareto.update('none');
    $('pareto-chart').setAttribute('aria-label', typeof pareto.top_20_percent_share === 'number'
      ? `Pareto curve: the top 20% of ${pareto.buyers} buying customers brought `
        + `${percent(pareto.top_20_percent_share)} of the revenue`
      : 'Pareto curve: no orders in the last 12 months');

    const stages = crm.stages || [];
    crmCharts.stages.data.labels = stages.map((s) => humanize(s.stage));
    crmCharts.stages.data.datasets[0].data = stages.map((s) => s.customers);
    crmCharts.stages.data.datasets[0].backgroundColor =
      stages.map((s) => STAGE_COLORS[s.stage] || CHART_COLORS.voicemail);
    crmCharts.stages.update('none');
    $('stages-chart').setAttribute('aria-label',
      `Customers by lifecycle stage: ${stages.map((s) => `${humanize(s.stage)} ${s.customers}`).join(', ')}`);

    const cohorts = (crm.cohorts || []).filter((c) => c.customers > 0);
    const longest = Math.max(0, ...(crm.cohorts || []).map((c) => c.retention.length));
    crmCharts.cohorts.data.labels = Array.from({ length: longest }, (_, i) => `Month ${i + 1}`);
    crmCharts.cohorts.data.datasets = cohorts.map((cohort, i) => ({
      label: `${cohort.month} (${cohort.customers})`,
      data: cohort.retention.map(asPercent),
      borderColor: cohortColor(i, cohorts.length),
      backgroundColor: cohortColor(i, cohorts.length),
      pointRadius: 2,
      spanGaps: false,
    }));
    crmCharts.cohorts.update('none');
    const firstMonth = cohorts.filter((c) => typeof c.retention[0] === 'number');
    const people = firstMonth.reduce((sum, c) => sum + c.customers, 0);
    const mean = people ? firstMonth.reduce((sum, c) => sum + c.retention[0] * c.customers, 0) / people : null;
    $('cohorts-chart').setAttribute('aria-label', cohorts.length
      ? `Cohort retention: ${cohorts.length} monthly cohorts; ${percent(mean)} bought again the month after `
        + 'their first purchase'
      : 'Cohort retention: no first purchases in the last 12 months');
  }

  function renderCohortTable(cohorts) {
    const table = $('crm-cohorts');
    const longest = Math.max(0, ...cohorts.map((c) => c.retention.length));
    const head = el('tr');
    ['Cohort', 'Customers', ...Array.from({ length: longest }, (_, i) => `M${i + 1}`)].forEach((text, i) => {
      const th = el('th', i ? 'num' : null, text);
      th.scope = 'col';
      if (i > 1) th.title = `${i - 1} month${i > 2 ? 's' : ''} after the first purchase`;
      head.append(th);
    });
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren(...cohorts.map((cohort) => {
      const row = el('tr');
      row.dataset.cohort = cohort.month;
      const name = el('th', null, cohort.month);
      name.scope = 'row';
      row.append(name, el('td', 'num', cohort.customers));
      for (let i = 0; i < longest; i += 1) {
        const value = cohort.retention[i];
        const cell = el('td', 'num', cohort.customers && typeof value === 'number' ? percent(value) : '');
        if (cohort.customers && typeof value === 'number') {
          cell.style.backgroundColor = `rgba(21, 101, 192, ${(0.08 + 0.6 * value).toFixed(2)})`;
        }
        row.append(cell);
      }
      return row;
    }));
  }

  function renderCrm(crm) {
    if (!crm) return;
    const key = JSON.stringify(crm);
    if (key === view.crmKey) return; // the panel changes rarely; the board is pushed up to twice a second
    view.crmKey = key;
    const recomputed = crm.recomputed_at
      ? `, as of the recompute of ${String(crm.recomputed_at).slice(0, 16).replace('T', ' ')} UTC` : '';
    $('crm-note').textContent = `(revenue over the last 12 months${recomputed}; cohorts by UTC month)`;
    renderTierTable(crm);
    renderCrmCharts(crm);
    renderCohortTable(crm.cohorts || []);
    $('crm').dataset.ready = 'true';
  }

  /* ---------- ticking & connection ---------- */

  function tick() {
    document.querySelectorAll('#wallboard [data-since]').forEach((node) => {
      node.textContent = formatDuration(secondsSince(node.dataset.since));
    });
    const drift = Math.max(0, Math.floor((serverNow() - view.receivedServerMs) / 1000));
    document.querySelectorAll('#wallboard [data-wait-base]').forEach((node) => {
      node.textContent = formatDuration(Number(node.dataset.waitBase) + drift);
    });
  }

  function onBoard(board) {
    if (!board) return;
    const serverTime = parseTime(board.server_time);
    view.skewMs = Number.isNaN(serverTime) ? 0 : serverTime - Date.now();
    view.receivedServerMs = serverNow();
    view.board = board;
    renderQueues(board.queues || []);
    renderAgents(board.agents || []);
    renderCalls(board.calls || []);
    renderCampaigns(board.campaigns || []);
    renderAlerts(board.alerts || []);
    renderCharts(board.day);
    renderCrm(board.crm);
    tick();
  }

  function setConnection(state, text) {
    view.connected = state === 'connected';
    $('wallboard').dataset.connected = String(view.connected);
    $('connection').dataset.state = state;
    $('connection').textContent = text;
  }

  function onConnect() {
    setConnection('connected', 'Connected');
    $('error').textContent = '';
    socket.emit('refresh', {}, () => {});
  }

  function onDisconnect(reason) {
    setConnection('reconnecting', 'Reconnecting…');
    // The client only reconnects by itself after transport failures, not when the server dropped us.
    if (reason === 'io server disconnect') setTimeout(() => socket.connect(), RETRY_AFTER_REFUSAL_MS);
  }

  function onConnectError() {
    if (socket.active) {
      setConnection('reconnecting', 'Reconnecting…');
      return;
    }
    setConnection('disconnected', 'Disconnected');
    $('error').textContent =
      'The server refused the live connection; your session may have ended. Reload the page to log in again.';
    setTimeout(() => socket.connect(), RETRY_AFTER_REFUSAL_MS);
  }

  function start() {
    if (typeof window.io !== 'function') {
      setConnection('disconnected', 'Disconnected');
      $('error').textContent = 'Live updates are unavailable: the Socket.IO client did not load.';
      return;
    }
    socket = window.io('/supervisor', { transports: ['websocket'] });
    socket.on('connect', onConnect);
    socket.on('disconnect', onDisconnect);
    socket.on('connect_error', onConnectError);
    socket.on('board', onBoard);
    setInterval(tick, 1000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
