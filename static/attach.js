// Progressive check of file sizes before upload: a file input with data-max-bytes refuses
// files over the limit at once, instead of after sending them. The server checks anyway.
(function () {
  "use strict";
  function human(bytes) {
    var units = ["bytes", "KB", "MB", "GB"];
    var i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
    return (i === 0 ? bytes : bytes.toFixed(bytes < 10 ? 1 : 0)) + " " + units[i];
  }
  function check(input) {
    var max = parseInt(input.getAttribute("data-max-bytes"), 10);
    var message = "";
    for (var i = 0; i < input.files.length; i += 1) {
      var file = input.files[i];
      if (file.size > max) {
        message = "“" + file.name + "” is " + human(file.size) + "; files can be at most " + human(max) + ".";
        break;
      }
    }
    input.setCustomValidity(message);
    var note = document.getElementById(input.id + "-size");
    if (note) { note.textContent = message; note.hidden = message === ""; }
    if (message) { input.reportValidity(); }
  }
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input && input.matches && input.matches("input[type=file][data-max-bytes]")) { check(input); }
  });
})();
