// Hospital ERP web UI. This file does three things only: the "Print"
// buttons, the live boards (the bed board, a ward's page, the
// housekeeping list and the queue board of a department), and the
// automatic log-off of idle sessions.
// Every page and every form works without it.
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

  // The live boards: the bed board (every ward or one), a ward's page, the
  // housekeeping list and the queue board of a department. A WebSocket to
  // the backend's event stream (opened with a short-lived ticket the web
  // server fetches for us) says when something changed; the board's
  // fragment is then fetched again and swapped in. Events name ids and
  // ticket numbers only, never a patient: what the board shows always
  // comes from the server's escaped HTML.
  function initLiveBoards() {
    var beds = document.querySelector('[data-live-beds]');
    if (beds) {
      liveBoard(beds, 'beds', 'ward_id', beds.getAttribute('data-ward-id'));
    }
    var queue = document.querySelector('[data-live-queue]');
    if (queue) {
      liveBoard(queue, 'queue', 'department_id', queue.getAttribute('data-department-id'));
    }
  }

  // liveBoard keeps board up to date with the events of topic whose
  // data[scopeKey] is scopeID (or that name no scope).
  function liveBoard(board, topic, scopeKey, scopeID) {
    if (!('WebSocket' in window) || !window.fetch) {
      return;
    }
    var status = document.querySelector('[data-live-status]');
    var statusText = status ? status.querySelector('.live__text') : null;
    var announce = document.querySelector('[data-live-announce]');
    var meta = document.querySelector('meta[name="csrf-token"]');
    var csrf = meta ? meta.getAttribute('content') : '';
    var fragmentURL = board.getAttribute('data-fragment-url');

    var lastEventID = '';
    var attempt = 0;
    // Beds named by events since the last refresh, to announce once the
    // fresh board shows their new state.
    var changedBeds = [];
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

    // swap replaces the board, keeping the keyboard focus on the control
    // with the same id (a "Seen" button), if it is still there.
    function swap(html) {
      var focused = document.activeElement;
      var focusID = focused && board.contains(focused) ? focused.id : '';
      var tpl = document.createElement('template');
      tpl.innerHTML = html;
      board.replaceChildren(tpl.content);
      if (focusID) {
        var again = document.getElementById(focusID);
        if (again) {
          again.focus();
        }
      }
    }

    // announceBeds tells screen reader users which beds changed: "Bed
    // A-01B: Occupied." Code and state come from the swapped-in board
    // (textContent, never HTML); a bed not on this board is not named.
    function announceBeds(ids) {
      if (!announce || topic !== 'beds') {
        return;
      }
      var said = [];
      for (var i = 0; i < ids.length; i++) {
        var tile = document.getElementById('bed-' + ids[i]);
        var state = tile ? tile.querySelector('.bed__status') : null;
        if (tile && state && said.indexOf(ids[i]) < 0) {
          said.push(ids[i]);
          announce.textContent = 'Bed ' + tile.getAttribute('data-bed-code') + ': ' + state.textContent + '.';
        }
      }
    }

    function refresh() {
      if (refreshing) {
        refreshAgain = true;
        return;
      }
      refreshing = true;
      var beds = changedBeds;
      changedBeds = [];
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
          swap(html);
          announceBeds(beds);
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

    // Bursts of events (a ward round, a clinic opening) cause one fetch,
    // not one each.
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
      if (msg.topic !== topic) {
        return false;
      }
      // Events that name another ward or department need no refresh; a
      // board of every ward (no scope) needs all of them.
      var data = msg.data || {};
      return !scopeID || !data[scopeKey] || data[scopeKey] === scopeID;
    }

    // A called ticket is announced to screen readers: "Ticket 007, Room 3".
    // textContent, never HTML.
    function announceCall(msg) {
      var data = msg.data || {};
      if (!announce || msg.topic !== 'queue' || msg.type !== 'queue.called' || !data.ticket) {
        return;
      }
      announce.textContent = 'Ticket ' + data.ticket + (data.call_point ? ', please go to ' + data.call_point : '') + '.';
    }

    function connect() {
      ticket().then(function (t) {
        var url = (window.location.protocol === 'https:' ? 'wss://' : 'ws://') + window.location.host +
          '/api/v1/events?topics=' + encodeURIComponent(topic) + '&ticket=' + encodeURIComponent(t);
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
          // "hello" too: something may have changed between this page
          // being rendered and the stream starting, or while the stream
          // was down. So every (re)connect fetches the whole board again,
          // and a "resync" (events missed) does too.
          if (relevant(msg)) {
            if (msg.topic === topic) {
              announceCall(msg);
              if (msg.data && msg.data.bed_id && changedBeds.length < 50) {
                changedBeds.push(msg.data.bed_id);
              }
            }
            scheduleRefresh();
          }
        });
        socket.addEventListener('close', reconnect);
      }).catch(reconnect);
    }

    // Exponential backoff with jitter, 1 s up to 30 s, so that a restarted
    // backend is not met by every screen at the same instant.
    function reconnect() {
      setStatus('reconnecting');
      var delay = Math.min(30000, 1000 * Math.pow(2, attempt));
      attempt++;
      window.setTimeout(connect, delay / 2 + Math.random() * delay / 2);
    }

    connect();
  }

  // Automatic log-off (HIPAA 164.312(a)(2)(iii)): after the idle time-out
  // in <meta name="idle-timeout"> (seconds) without a key press, pointer,
  // touch or scroll, the page goes to /logout?reason=idle, which ends the
  // session and shows the sign-in page saying why. A minute before, a
  // warning offers to stay. Activity in any tab counts for all of them
  // (localStorage), and while the user is active a keep-alive reaches the
  // backend, whose own idle time-out would otherwise end the session of
  // someone who reads a long page without loading another.
  function initIdleLogoff() {
    var meta = document.querySelector('meta[name="idle-timeout"]');
    var timeout = meta ? parseInt(meta.getAttribute('content'), 10) * 1000 : 0;
    if (!(timeout > 0)) {
      return;
    }
    var warnBefore = Math.min(60000, timeout / 2);
    var pingEvery = Math.min(60000, Math.max(5000, timeout / 3));
    var key = 'hospital-erp.last-activity';
    var csrfMeta = document.querySelector('meta[name="csrf-token"]');
    var csrf = csrfMeta ? csrfMeta.getAttribute('content') : '';
    var warning = document.querySelector('[data-idle-warning]');
    var seconds = document.querySelector('[data-idle-seconds]');
    var live = document.querySelector('[data-idle-live]');
    var stay = document.querySelector('[data-idle-stay]');
    var last = Date.now();
    var lastPing = last;
    var pending = false;
    var warned = false;
    var leaving = false;

    function shared() {
      try {
        var v = parseInt(window.localStorage.getItem(key), 10);
        if (v > last && v <= Date.now()) {
          last = v;
        }
      } catch (e) { /* storage disabled: this tab counts alone */ }
    }

    function store() {
      try {
        window.localStorage.setItem(key, String(last));
      } catch (e) { /* ignored */ }
    }

    function signOut() {
      if (leaving) {
        return;
      }
      leaving = true;
      window.location.assign('/logout?reason=idle&next=' +
        encodeURIComponent(window.location.pathname + window.location.search));
    }

    function ping() {
      if (pending || !window.fetch) {
        return;
      }
      pending = true;
      lastPing = Date.now();
      fetch('/session/keepalive', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRF-Token': csrf, Accept: 'text/plain' }
      }).then(function (res) {
        if (res.status === 401) {
          // The backend ended the session already: the sign-in page says so.
          window.location.reload();
        }
      }).catch(function () { /* the next activity tries again */ })
        .then(function () { pending = false; });
    }

    function hideWarning() {
      if (!warned) {
        return;
      }
      warned = false;
      if (warning) {
        warning.hidden = true;
      }
      if (live) {
        live.textContent = '';
      }
    }

    function showWarning(left) {
      if (seconds) {
        seconds.textContent = String(left);
      }
      if (warned) {
        return;
      }
      warned = true;
      if (warning) {
        warning.hidden = false;
      }
      // Announced once, not at every tick of the countdown.
      if (live) {
        live.textContent = 'You will be signed out in ' + left +
          ' seconds because there was no activity. Press any key to stay signed in.';
      }
    }

    function activity() {
      var now = Date.now();
      if (leaving || now - last < 1000) {
        return;
      }
      last = now;
      store();
      hideWarning();
      if (now - lastPing >= pingEvery) {
        ping();
      }
    }

    function tick() {
      shared();
      var left = timeout - (Date.now() - last);
      if (left <= 0) {
        signOut();
        return;
      }
      if (left <= warnBefore) {
        showWarning(Math.ceil(left / 1000));
      } else {
        hideWarning();
      }
      window.setTimeout(tick, Math.min(1000, left));
    }

    var events = ['keydown', 'mousedown', 'mousemove', 'touchstart', 'scroll', 'wheel'];
    for (var i = 0; i < events.length; i++) {
      document.addEventListener(events[i], activity, { passive: true, capture: true });
    }
    if (stay) {
      stay.addEventListener('click', function () {
        last = 0; // always counts, even within a second of the last event
        activity();
        ping();
      });
    }
    store();
    tick();
  }

  initPrint();
  initLiveBoards();
  initIdleLogoff();
})();
