// Studio dashboard: small progressive enhancements. Everything works without this file.
(function () {
  "use strict";

  // Relative times ("3 min ago") stay fresh; the exact time is in the title attribute.
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
    (root || document).querySelectorAll("time[data-relative]").forEach(function (el) {
      el.textContent = relative(el.getAttribute("datetime"));
    });
  }
  setInterval(refreshTimes, 30000);

  // The event log opens at its end and follows new lines while the reader is at the bottom.
  function logAtBottom(log) {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }
  function initLog() {
    var log = document.getElementById("event-log");
    if (log) log.scrollTop = log.scrollHeight;
  }
  var follow = true, heightBefore = 0, prepending = false;
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var log = document.getElementById("event-log");
    if (!log || !log.contains(evt.detail.target)) return;
    follow = logAtBottom(log);
    prepending = evt.detail.target.classList.contains("log-earlier");
    heightBefore = log.scrollHeight;
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    var log = document.getElementById("event-log");
    if (log && log.contains(evt.detail.target) || (log && evt.detail.target.id === "log-poller")) {
      if (prepending) {
        log.scrollTop += log.scrollHeight - heightBefore;  // keep the reader's place
      } else if (follow) {
        log.scrollTop = log.scrollHeight;
      }
    }
    refreshTimes(evt.detail.target);
  });

  // oneOf / anyOf: show the chosen variant's fields; the others are disabled so the browser
  // neither validates nor submits them.
  document.addEventListener("change", function (evt) {
    var select = evt.target.closest("[data-variant-select]");
    if (!select) return;
    document.querySelectorAll('[data-variant-of="' + select.dataset.variantSelect + '"]').forEach(function (fs) {
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

  // Copy buttons (the new API token).
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.dataset.copy);
    input.select();
    if (navigator.clipboard) navigator.clipboard.writeText(input.value);
    button.textContent = "Copied";
  });
  document.addEventListener("focusin", function (evt) {
    if (evt.target.matches("[data-select-on-focus]")) evt.target.select();
  });

  // Menus and confirmations built on <details>: Escape or a click elsewhere closes them.
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape") return;
    document.querySelectorAll("details[data-menu][open]").forEach(function (d) {
      d.open = false;
      d.querySelector("summary").focus();
    });
  });
  document.addEventListener("click", function (evt) {
    document.querySelectorAll("details[data-menu][open]").forEach(function (d) {
      if (!d.contains(evt.target)) d.open = false;
    });
  });

  // After a failed launch, take keyboard and screen-reader users to the error summary.
  document.addEventListener("DOMContentLoaded", function () {
    initLog();
    var errors = document.getElementById("form-errors");
    if (errors) {
      var firstInvalid = document.querySelector('[aria-invalid="true"]');
      (firstInvalid || errors).focus();
    }
  });
})();
