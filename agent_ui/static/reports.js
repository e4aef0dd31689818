/* Switchboard reports: figures by day, queue, agent and campaign, and the CRM's months and tiers, in the viewer's
   time zone, fetched when the supervisor asks (the server computes them with the wallboard's definitions), and
   the same numbers as CSV. */
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const { el } = window.Switchboard;
  const SECTIONS = ['days', 'queues', 'agents', 'campaigns', 'months', 'tiers'];

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    } catch (err) {
      return 'UTC';
    }
  }

  // Today's date in a time zone, as YYYY-MM-DD (en-CA formats dates that way).
  function todayIn(zone) {
    try {
      return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' })
        .format(new Date());
    } catch (err) {
      return new Date().toISOString().slice(0, 10);
    }
  }

  function chooseZone(zone) {
    const select = $('report-tz');
    if (![...select.options].some((option) => option.value === zone)) {
      select.append(new Option(zone, zone));
    }
    select.value = zone;
  }

  // Money comes as an exact decimal string ("1234.50") in the CRM's currency.
  function formatMoney(value, currency) {
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(Number(value));
    } catch (err) {
      return `${value} ${currency || ''}`.trim();
    }
  }

  function formatValue(value, kind, currency) {
    if (value === null || value === undefined || value === '') return '—';
    if (kind === 'rate') return `${(value * 100).toFixed(1)}%`;
    if (kind === 'seconds') return `${Number(value).toFixed(1)} s`;
    if (kind === 'money') return formatMoney(value, currency);
    return String(value);
  }

  function renderTable(section, columns, rows, currency) {
    const table = $(`report-${section}`);
    const head = el('tr');
    columns.forEach((column) => {
      const th = el('th', column.kind === 'text' ? null : 'num', column.label);
      th.scope = 'col';
      head.append(th);
    });
    table.tHead.replaceChildren(head);
    if (!rows.length) {
      const row = el('tr', 'empty-row');
      const cell = el('td', 'muted', 'Nothing in this range.');
      cell.colSpan = columns.length;
      row.append(cell);
      table.tBodies[0].replaceChildren(row);
      return;
    }
    table.tBodies[0].replaceChildren(...rows.map((data) => {
      const row = el('tr');
      columns.forEach((column, index) => {
        const text = formatValue(data[column.key], column.kind, currency);
        if (index === 0) {
          const th = el('th', null, text);
          th.scope = 'row';
          row.append(th);
        } else {
          const td = el('td', column.kind === 'text' ? null : 'num', text);
          td.dataset.key = column.key;
          row.append(td);
        }
      });
      return row;
    }));
  }

  function query() {
    return new URLSearchParams({ from: $('report-from').value, to: $('report-to').value, tz: $('report-tz').value });
  }

  function updateCsvLinks(params) {
    const template = $('reports').dataset.csvUrl;
    document.querySelectorAll('.report-csv').forEach((link) => {
      link.href = `${template.replace('SECTION', link.dataset.section)}?${params}`;
    });
  }

  async function load() {
    const params = query();
    $('report-error').textContent = '';
    $('report-status').textContent = 'Loading…';
    updateCsvLinks(params);
    window.history.replaceState(null, '', `?${params}`);
    try {
      const response = await fetch(`${$('reports').dataset.dataUrl}?${params}`, {
        credentials: 'same-origin', headers: { Accept: 'application/json' },
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        $('report-status').textContent = '';
        $('report-error').textContent = data.message || `The report failed (${response.status}).`;
        return;
      }
      SECTIONS.forEach((section) => renderTable(section, data.columns[section], data[section], data.currency));
      $('report-status').textContent =
        `${data.from} to ${data.to}, ${data.time_zone} (days cut at local midnight).`;
    } catch (err) {
      $('report-status').textContent = '';
      $('report-error').textContent = 'The server did not answer; check the connection and try again.';
    }
  }

  function start() {
    const params = new URLSearchParams(window.location.search);
    chooseZone(params.get('tz') || browserZone());
    const today = todayIn($('report-tz').value);
    $('report-from').value = params.get('from') || today;
    $('report-to').value = params.get('to') || today;
    $('report-form').addEventListener('submit', (event) => {
      event.preventDefault();
      load();
    });
    load();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
