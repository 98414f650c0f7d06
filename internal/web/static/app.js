// Hospital ERP web UI. This file does two things only: the "Print
// wristband" button, and the live bed board of a ward page. Every page
// and every form works without it.
(function () {
  'use strict';

  // The print button is hidden in the HTML, so that without this script
  // nobody sees a button that does nothing.
  function initPrint() {
    var buttons = document.querySelectorAll('[data-print]');
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].hidden = false;
      buttons[i].addEventListener('click', function () { window.print(); });
    }
  }

  // The live bed board: a WebSocket to the backend's event stream (opened
  // with a short-lived ticket the web server fetches for us), and on any
  // bed event the board fragment is fetched again and swapped in.
  function initLiveBeds() {
    var board = document.querySelector('[data-live-beds]');
    if (!board || !('WebSocket' in window) || !window.fetch) {
      return;
    }
    var status = document.querySelector('[data-live-status]');
    var statusText = status ? status.querySelector('.live__text') : null;
    var meta = document.querySelector('meta[name="csrf-token"]');
    var csrf = meta ? meta.getAttribute('content') : '';
    var fragmentURL = board.getAttribute('data-fragment-url');
    var wardID = board.getAttribute('data-ward-id');

    var lastEventID = '';
    var attempt = 0;
    var refreshTimer = 0;
    var refreshing = false;
    var refreshAgain = false;
    var state = '';

    function setStatus(next) {
      if (!status || next === state) {
        return;
      }
      state = next;
      status.hidden = false;
      status.classList.toggle('live--on', next === 'live');
      status.classList.toggle('live--off', next !== 'live');
      statusText.textContent = next === 'live' ? 'Live' : 'Reconnecting…';
    }

    // The session ended (401): a full reload lands on the sign-in page
    // with the reason shown.
    function signedOut() {
      window.location.reload();
    }

    function refresh() {
      if (refreshing) {
        refreshAgain = true;
        return;
      }
      refreshing = true;
      fetch(fragmentURL, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'text/html' } })
        .then(function (res) {
          if (res.status === 401) {
            signedOut();
            throw new Error('signed out');
          }
          if (!res.ok) {
            throw new Error('HTTP ' + res.status);
          }
          return res.text();
        })
        .then(function (html) {
          var tpl = document.createElement('template');
          tpl.innerHTML = html;
          board.replaceChildren(tpl.content);
        })
        .catch(function () { /* the next event or reconnect tries again */ })
        .then(function () {
          refreshing = false;
          if (refreshAgain) {
            refreshAgain = false;
            scheduleRefresh();
          }
        });
    }

    // Bursts of events (a ward round) cause one fetch, not one each.
    function scheduleRefresh() {
      window.clearTimeout(refreshTimer);
      refreshTimer = window.setTimeout(refresh, 250);
    }

    function ticket() {
      return fetch('/events/ticket', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRF-Token': csrf, Accept: 'application/json' }
      }).then(function (res) {
        if (res.status === 401) {
          signedOut();
          throw new Error('signed out');
        }
        if (!res.ok) {
          throw new Error('HTTP ' + res.status);
        }
        return res.json();
      }).then(function (body) {
        return body.ticket;
      });
    }

    function relevant(msg) {
      if (msg.type === 'resync' || msg.type === 'hello') {
        return true;
      }
      if (msg.topic !== 'beds') {
        return false;
      }
      // Events that name another ward need no refresh of this one.
      var data = msg.data || {};
      return !data.ward_id || data.ward_id === wardID;
    }

    function connect() {
      ticket().then(function (t) {
        var url = (window.location.protocol === 'https:' ? 'wss://' : 'ws://') + window.location.host +
          '/api/v1/events?topics=beds&ticket=' + encodeURIComponent(t);
        if (lastEventID) {
          url += '&since=' + encodeURIComponent(lastEventID);
        }
        var socket = new WebSocket(url);
        socket.addEventListener('open', function () {
          attempt = 0;
          setStatus('live');
        });
        socket.addEventListener('message', function (e) {
          var msg;
          try {
            msg = JSON.parse(e.data);
          } catch (err) {
            return;
          }
          if (msg.id) {
            lastEventID = msg.id;
          }
          // "hello" too: a bed may have changed between this page being
          // rendered and the stream starting.
          if (relevant(msg)) {
            scheduleRefresh();
          }
        });
        socket.addEventListener('close', reconnect);
      }).catch(reconnect);
    }

    // Exponential backoff with jitter, 1 s up to 30 s, so that a restarted
    // backend is not met by every ward tablet at the same instant.
    function reconnect() {
      setStatus('reconnecting');
      var delay = Math.min(30000, 1000 * Math.pow(2, attempt));
      attempt++;
      window.setTimeout(connect, delay / 2 + Math.random() * delay / 2);
    }

    connect();
  }

  initPrint();
  initLiveBeds();
})();
