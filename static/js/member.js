// Member pages: progressive enhancement only; without it every day of the week is listed.
(function () {
  "use strict";

  // Phones see one day at a time: the day tabs switch the panel instead of scrolling to it.
  document.querySelectorAll("[data-day-list]").forEach(function (list) {
    var tabs = list.querySelectorAll("[data-day]");
    var panels = list.querySelectorAll("[data-day-panel]");
    function show(day) {
      tabs.forEach(function (tab) {
        var active = tab.getAttribute("data-day") === day;
        tab.classList.toggle("is-active", active);
        if (active) { tab.setAttribute("aria-current", "date"); } else { tab.removeAttribute("aria-current"); }
      });
      panels.forEach(function (panel) {
        panel.classList.toggle("is-active", panel.getAttribute("data-day-panel") === day);
      });
    }
    tabs.forEach(function (tab) {
      tab.addEventListener("click", function (event) {
        event.preventDefault();
        show(tab.getAttribute("data-day"));
        if (history.replaceState) { history.replaceState(null, "", "#day-" + tab.getAttribute("data-day")); }
      });
    });
    var fromHash = /^#day-(\d{4}-\d{2}-\d{2})$/.exec(window.location.hash);
    list.classList.add("js-one-day");
    show(fromHash ? fromHash[1] : list.getAttribute("data-initial-day"));
  });
})();
