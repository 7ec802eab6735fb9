// Studio dashboard: progressive enhancements. Everything works without this file; no inline
// script or style anywhere (the Content-Security-Policy forbids them), so all behaviour hangs
// off data- attributes and classes.
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  // --- Relative times ("3 min ago") stay fresh; the exact time is in the title attribute. ---
  function relative(iso) {
    var seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    var future = seconds < 0;
    seconds = Math.abs(seconds);
    if (seconds < 10) return "just now";
    var units = [[31536000, "y"], [2592000, "mo"], [86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
    for (var i = 0; i < units.length; i++) {
      if (seconds >= units[i][0]) {
        var n = Math.floor(seconds / units[i][0]);
        return future ? "in " + n + " " + units[i][1] : n + " " + units[i][1] + " ago";
      }
    }
    return "just now";
  }
  function refreshTimes(root) {
    $$("time[data-relative]", root).forEach(function (el) {
      el.textContent = relative(el.getAttribute("datetime"));
    });
  }
  setInterval(refreshTimes, 30000);

  // --- A live run's elapsed time ticks every second. ---
  function tickElapsed() {
    $$("[data-elapsed-since]").forEach(function (el) {
      var s = Math.max(0, Math.floor((Date.now() - new Date(el.dataset.elapsedSince).getTime()) / 1000));
      var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
      var pad = function (n) { return n < 10 ? "0" + n : "" + n; };
      el.textContent = h ? h + ":" + pad(m) + ":" + pad(sec) : m + ":" + pad(sec);
    });
  }
  setInterval(tickElapsed, 1000);

  // --- Theme: follows the system unless the reader chose; the choice is remembered. ---
  function effectiveTheme() {
    var chosen = document.documentElement.dataset.theme;
    if (chosen) return chosen;
    return window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function syncThemeButton() {
    var button = $("[data-theme-toggle]");
    if (!button) return;
    var dark = effectiveTheme() === "dark";
    button.setAttribute("aria-pressed", dark ? "true" : "false");
    button.title = dark ? "Switch to light mode" : "Switch to dark mode";
  }
  document.addEventListener("click", function (evt) {
    if (!evt.target.closest("[data-theme-toggle]")) return;
    var next = effectiveTheme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem("studio-theme", next); } catch (e) { /* not remembered */ }
    syncThemeButton();
  });

  // --- The log: opens at its end (or at a linked line), follows new lines while following. ---
  var follow = true, heightBefore = 0, prepending = false, programmatic = false;
  function logEl() { return document.getElementById("event-log"); }
  function atBottom(log) { return log.scrollHeight - log.scrollTop - log.clientHeight < 40; }
  function setFollow(on) {
    follow = on;
    var button = document.getElementById("log-follow");
    if (button) {
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = on ? "Following" : "Follow";
    }
  }
  function scrollLog(top) {
    var log = logEl();
    if (!log) return;
    programmatic = true;
    log.scrollTop = top === undefined ? log.scrollHeight : top;
    requestAnimationFrame(function () { programmatic = false; });
  }
  function showLine(row) {
    // Scroll the log (not the page) so the line sits in its middle, and mark it.
    var log = logEl();
    $$(".ev-target", log).forEach(function (el) { if (el !== row) el.classList.remove("ev-target"); });
    row.classList.add("ev-target");
    scrollLog(row.offsetTop - log.clientHeight / 2 + row.offsetHeight / 2);
    setFollow(false);
  }
  function initLog() {
    var log = logEl();
    if (!log) return;
    var hash = /^#ev-(\d+)$/.exec(location.hash);
    var targetId = hash ? "ev-" + hash[1] : log.dataset.target;
    if (targetId) {
      var row = document.getElementById(targetId);
      if (row && log.contains(row)) {
        showLine(row);
        return;
      }
      if (hash && !/[?&]around=/.test(location.search)) {
        // The line is outside the window the page opened with: open the window around it.
        location.replace(location.pathname + "?around=" + hash[1] + location.hash);
        return;
      }
    }
    scrollLog();
    setFollow(true);
  }
  window.addEventListener("hashchange", function () {
    if (/^#ev-\d+$/.test(location.hash)) initLog();
  });
  document.addEventListener("scroll", function (evt) {
    var log = logEl();
    if (!log || evt.target !== log || programmatic) return;
    setFollow(atBottom(log));
  }, true);
  document.addEventListener("click", function (evt) {
    if (!evt.target.closest("#log-follow")) return;
    setFollow(!follow);
    if (follow) scrollLog();
  });
  var swappingCard = false;
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var log = logEl();
    swappingCard = evt.detail.target.id === "log-card";
    if (!log || !log.contains(evt.detail.target)) return;
    prepending = evt.detail.target.classList.contains("log-earlier");
    heightBefore = log.scrollHeight;
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    var log = logEl();
    if (swappingCard) {
      swappingCard = false;
      initLog();  // search, chips, match links: a new window, opened at its target or end
    } else if (log) {
      if (prepending) {
        scrollLog(log.scrollTop + log.scrollHeight - heightBefore);  // keep the reader's place
        prepending = false;
      } else if (follow) {
        scrollLog();
      }
    }
    refreshTimes(evt.detail.target.isConnected ? evt.detail.target : document);
    afterUpdate();
  });
  document.addEventListener("htmx:afterSettle", function () { afterUpdate(); syncFollowButton(); });
  function syncFollowButton() { setFollow(follow); }

  // --- Copy: the run id, JSON, errors (data-copy-text="#id"), a token (data-copy="#input"),
  //     a link to a log line (data-copy-link="<event id>"). ---
  function copied(button, text) {
    var label = button.dataset.label || button.innerHTML;
    button.dataset.label = label;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).catch(function () { fallbackCopy(text); });
    } else {
      fallbackCopy(text);
    }
    button.textContent = "Copied";
    setTimeout(function () { button.innerHTML = button.dataset.label; }, 1500);
  }
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "sr-only";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    area.remove();
  }
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-copy], [data-copy-text], [data-copy-link]");
    if (!button) return;
    if (button.dataset.copy) {
      // A field (a new secret) or any element (a webhook's URL, its curl example).
      var source = $(button.dataset.copy);
      var isField = source.matches("input, textarea");
      if (isField) source.select();
      copied(button, isField ? source.value : source.textContent);
    } else if (button.dataset.copyText) {
      var block = $(button.dataset.copyText);
      copied(button, block ? block.textContent : "");
    } else {
      var url = location.origin + location.pathname + "?around=" + button.dataset.copyLink + "#ev-" + button.dataset.copyLink;
      copied(button, url);
      button.dataset.copied = url;
    }
  });
  document.addEventListener("focusin", function (evt) {
    if (evt.target.matches("[data-select-on-focus]")) evt.target.select();
  });

  // --- A live run: status mark in the tab title and the favicon, a notification at the end. ---
  var MARKS = { pending: "○", running: "●", waiting: "◐", cancelling: "◌", completed: "✓", failed: "✗", cancelled: "⊘" };
  var TERMINAL = { completed: 1, failed: 1, cancelled: 1 };
  var baseTitle = document.title, lastStatus = null;
  function afterUpdate() {
    var summary = document.getElementById("run-summary");
    if (!summary) return;
    var status = summary.dataset.status;
    document.title = (MARKS[status] ? MARKS[status] + " " : "") + baseTitle;
    var icon = $("link[rel=icon]");
    if (icon && summary.dataset.icon) icon.href = summary.dataset.icon;  // a static URL, hashed or not
    if (lastStatus && lastStatus !== status && TERMINAL[status] && !TERMINAL[lastStatus]) notifyEnd(summary, status);
    lastStatus = status;
    var notify = $("[data-notify]");
    if (notify && "Notification" in window) {
      notify.hidden = false;
      if (Notification.permission === "granted" && notify.dataset.on) {
        notify.textContent = "You will be notified";
        notify.setAttribute("aria-pressed", "true");
      }
    }
  }
  var notifyWanted = false;
  function notifyEnd(summary, status) {
    if (!notifyWanted || !("Notification" in window) || Notification.permission !== "granted") return;
    try {
      new Notification(summary.dataset.name + " " + status, { body: "Studio run " + status + ".", tag: location.pathname });
    } catch (e) { /* some browsers only notify from a service worker */ }
  }
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-notify]");
    if (!button || !("Notification" in window)) return;
    Notification.requestPermission().then(function (answer) {
      notifyWanted = answer === "granted";
      button.dataset.on = notifyWanted ? "1" : "";
      button.textContent = notifyWanted ? "You will be notified" : "Notifications are blocked";
      button.setAttribute("aria-pressed", notifyWanted ? "true" : "false");
    });
  });

  // --- oneOf / anyOf: show the chosen variant's fields; the others are disabled so the browser
  //     neither validates nor submits them. ---
  document.addEventListener("change", function (evt) {
    var select = evt.target.closest("[data-variant-select]");
    if (!select) return;
    $$('[data-variant-of="' + select.dataset.variantSelect + '"]').forEach(function (fs) {
      var on = fs.dataset.variant === select.value;
      fs.hidden = !on;
      fs.disabled = !on;
    });
  });

  // The runs list's poll redraws rows: keep the runs a user checked for a bulk action checked.
  var checkedRuns = new Set();
  document.addEventListener("change", function (evt) {
    if (!evt.target.matches("[data-bulk-select]")) return;
    if (evt.target.checked) checkedRuns.add(evt.target.value);
    else checkedRuns.delete(evt.target.value);
  });
  document.addEventListener("htmx:oobAfterSwap", function () {
    document.querySelectorAll("[data-bulk-select]").forEach(function (box) {
      if (checkedRuns.has(box.value)) box.checked = true;
    });
  });

  // --- "+ Add item" / "Remove" keep the keyboard where the reader is: on the new row, or on
  //     the row that took the removed one's place (else the Add button). ---
  var arrayAction = null;
  document.addEventListener("htmx:configRequest", function (evt) {
    var button = evt.detail.elt;
    if (!button || !button.name || button.name !== "_action") return;
    var group = button.closest("fieldset.array");
    var rows = group ? $$(":scope > .array-row", group) : [];
    var row = button.closest(".array-row");
    arrayAction = { kind: button.value.split(":")[0], group: group && group.id, index: row ? rows.indexOf(row) : -1 };
  });
  function firstControl(root) {
    return root && $("input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled])", root);
  }
  document.addEventListener("htmx:afterSettle", function (evt) {
    if (!arrayAction || evt.detail.target.id !== "input-fields") return;
    var group = document.getElementById(arrayAction.group);
    var action = arrayAction;
    arrayAction = null;
    if (!group) return;
    var rows = $$(":scope > .array-row", group);
    var row = action.kind === "add" ? rows[rows.length - 1] : rows[Math.min(action.index, rows.length - 1)];
    var target = firstControl(row) || $(":scope > button[value^='add:']", group) || group;
    if (target === group) group.setAttribute("tabindex", "-1");
    target.focus();
  });

  // --- Runs list: filters apply on change; new runs announce themselves. ---
  document.addEventListener("change", function (evt) {
    var form = evt.target.closest("form[data-autosubmit]");
    if (!form || evt.target.type === "search") return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });

  // --- Keyboard shortcuts. ---
  function rows() { return $$("[data-row-link]"); }
  var current = -1;
  function moveRow(step) {
    var list = rows();
    if (!list.length) return;
    var focused = list.indexOf(document.activeElement);
    if (focused !== -1) current = focused;
    current = Math.max(0, Math.min(list.length - 1, current + step));
    list.forEach(function (el, i) { el.closest("tr").classList.toggle("row-current", i === current); });
    list[current].focus();
    list[current].closest("tr").scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (evt) {
    if (evt.key === "Escape") {
      $$("details[data-menu][open]").forEach(function (d) {
        d.open = false;
        d.querySelector("summary").focus();
      });
      return;
    }
    if (evt.ctrlKey || evt.metaKey || evt.altKey || typing(evt.target)) return;
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open && evt.key !== "?") return;
    if (evt.key === "/") {
      var search = $("[data-shortcut-search]");
      if (search) { evt.preventDefault(); search.focus(); search.select(); }
    } else if (evt.key === "j" || evt.key === "k") {
      if (rows().length) { evt.preventDefault(); moveRow(evt.key === "j" ? 1 : -1); }
    } else if (evt.key === "Enter" && current !== -1 && rows()[current] && document.activeElement === document.body) {
      rows()[current].click();
    } else if (evt.key === "r") {
      var rerun = $('[data-shortcut="r"]');
      if (rerun) { evt.preventDefault(); rerun.click(); }
    } else if (evt.key === "c") {
      var cancel = $('[data-shortcut="c"]');
      if (cancel) {
        evt.preventDefault();
        var details = cancel.closest("details");
        details.open = true;
        var yes = $("button[type=submit]", details);
        if (yes) yes.focus();
      }
    } else if (evt.key === "?") {
      if (dialog) {
        evt.preventDefault();
        if (dialog.open) dialog.close(); else dialog.showModal();
      }
    }
  });
  document.addEventListener("click", function (evt) {
    if (evt.target.closest("[data-shortcuts-open]")) {
      var dialog = document.getElementById("shortcuts");
      if (dialog) dialog.showModal();
    }
    if (evt.target.closest("[data-dialog-close]")) evt.target.closest("dialog").close();
    $$("details[data-menu][open]").forEach(function (d) {
      if (!d.contains(evt.target)) d.open = false;
    });
  });

  // --- After a failed submit: focus the first invalid field (radio groups included) or the
  //     error summary. ---
  document.addEventListener("DOMContentLoaded", function () {
    syncThemeButton();
    initLog();
    afterUpdate();
    tickElapsed();
    // On a phone the runs filters start folded away, unless some are in use.
    var filters = document.getElementById("filter-card");
    if (filters && window.matchMedia("(max-width: 640px)").matches && !filters.hasAttribute("data-filtered")) {
      filters.open = false;
    }
    var errors = document.getElementById("form-errors");
    var firstInvalid = $('main [aria-invalid="true"]');
    if (firstInvalid && (errors || firstInvalid.closest("form"))) {
      firstInvalid.focus();
    } else if (errors) {
      errors.focus();
    }
  });
})();
