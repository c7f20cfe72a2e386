// Fills an empty time-zone field with the browser's IANA zone; the person can change it.
(function () {
  "use strict";
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  var fields = document.querySelectorAll("input[data-detect-timezone]");
  for (var i = 0; i < fields.length; i++) {
    if (!fields[i].value && zone) { fields[i].value = zone; }
  }
})();
