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

  // The booking form's repeat section: show only the settings of the chosen kind of repeat.
  // Without it every setting is shown and the server ignores the ones that do not apply.
  document.querySelectorAll(".repeat-section").forEach(function (section) {
    var radios = section.querySelectorAll("input[name=repeat]");
    var parts = section.querySelectorAll("[data-repeat-for]");
    function update() {
      var chosen = section.querySelector("input[name=repeat]:checked");
      var kind = chosen ? chosen.value : "none";
      parts.forEach(function (part) {
        part.hidden = part.getAttribute("data-repeat-for").split(" ").indexOf(kind) === -1;
      });
    }
    radios.forEach(function (radio) { radio.addEventListener("change", update); });
    update();
  });
})();
