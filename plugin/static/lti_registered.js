// Dynamic Registration 1.0, section 3.6: tell the platform the registration is complete
// so it closes this frame or window and continues its own flow.
(function () {
  "use strict";
  function close() {
    (window.opener || window.parent).postMessage({ subject: "org.imsglobal.lti.close" }, "*");
  }
  document.getElementById("close-registration").addEventListener("click", close);
  close();
})();
