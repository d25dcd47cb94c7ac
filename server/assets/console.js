// Đồng Hành console: conveniences only; every page works without this script.
// "Select all" checkboxes: <input type="checkbox" data-select-all="NAME"> toggles every
// checkbox named NAME in the same form.
document.addEventListener("change", function (event) {
  var box = event.target;
  if (!(box instanceof HTMLInputElement)) return;
  var name = box.getAttribute("data-select-all");
  if (!name || !box.form) return;
  var boxes = box.form.querySelectorAll('input[type="checkbox"][name="' + name + '"]');
  for (var i = 0; i < boxes.length; i++) boxes[i].checked = box.checked;
});
// Select-all boxes are hidden until the script runs (they do nothing without it).
document.addEventListener("DOMContentLoaded", function () {
  var boxes = document.querySelectorAll("[data-select-all]");
  for (var i = 0; i < boxes.length; i++) {
    var label = boxes[i].closest("[hidden]");
    if (label) label.hidden = false;
  }
});
