/* Helpers shared by the agent console and the wallboard (loaded before either). */
'use strict';

window.Switchboard = (() => {
  // The server sends UTC; a timestamp without an offset would otherwise be read as local time.
  function parseTime(iso) {
    if (!iso) return NaN;
    return Date.parse(/([zZ]|[+-]\d\d:?\d\d)$/.test(iso) ? iso : `${iso}Z`);
  }

  function formatDuration(total) {
    const s = Math.max(0, Math.floor(total || 0));
    const hours = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
    const ss = String(s % 60).padStart(2, '0');
    return hours > 0 ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  // Text only: data never goes through innerHTML.
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function humanize(word) {
    if (!word) return '';
    const spaced = String(word).replace(/_/g, ' ');
    return spaced.charAt(0).toUpperCase() + spaced.slice(1);
  }

  return { parseTime, formatDuration, el, humanize };
})();
