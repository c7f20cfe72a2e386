// LTI platform storage (1EdTech "LTI Client Side postMessages"): keep the login's browser
// secret in the platform's storage frame instead of a cookie, and read it back at launch.
// Messages go only to, and are accepted only from, the platform's origin.
(function () {
  "use strict";
  var box = document.getElementById("lti-storage");
  if (!box) { return; }
  var origin = box.dataset.origin;
  var messageId = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Math.random());
  var done = false;

  function targetWindow() {
    var name = box.dataset.target;
    if (name === "_parent" || !name) { return window.parent; }
    try { return window.parent.frames[name] || window.parent; } catch (e) { return window.parent; }
  }

  function finish(value) {
    if (done) { return; }
    done = true;
    window.removeEventListener("message", onMessage);
    if (box.dataset.mode === "put") {
      window.location.assign(box.dataset.next);
    } else {
      box.querySelector('input[name="lti_storage_value"]').value = value || "";
      box.submit();
    }
  }

  function onMessage(event) {
    if (event.origin !== origin || !event.data || event.data.message_id !== messageId) { return; }
    var expected = box.dataset.mode === "put" ? "lti.put_data.response" : "lti.get_data.response";
    if (event.data.subject !== expected) { return; }
    finish(event.data.error ? "" : event.data.value);
  }

  window.addEventListener("message", onMessage);
  var message = { subject: box.dataset.mode === "put" ? "lti.put_data" : "lti.get_data",
                  message_id: messageId, key: box.dataset.key };
  if (box.dataset.mode === "put") { message.value = box.dataset.value; }
  targetWindow().postMessage(message, origin);
  // A platform that does not answer must not leave the person on this page.
  window.setTimeout(function () { finish(""); }, 3000);
})();
