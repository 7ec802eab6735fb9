// Loaded in <head> without defer so the remembered theme applies before the first paint.
(function () {
  "use strict";
  try {
    var theme = localStorage.getItem("studio-theme");
    if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;
  } catch (e) { /* storage blocked: follow the system setting */ }
  document.documentElement.classList.add("js");
})();
